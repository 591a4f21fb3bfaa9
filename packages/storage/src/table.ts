import { compareKeys } from 'lmdb'
import { matchesPrefix } from './change-feed.js'
import type { Db } from './databases.js'
import { StorageError, StoreClosedError } from './errors.js'
import { checkKey, type StoredRecord } from './record-format.js'
import type {
  ChangeEvent,
  Key,
  RangeOptions,
  RecordEntry,
  RecordVersion,
  Table,
  WriteKind,
  WriteListener,
  WriteOptions,
} from './types.js'
import { DELETE, MESSAGE, PATCH, PUT } from './write-plan.js'

/** What a table needs of its store. */
export interface TableHost {
  readonly closed: boolean
  write(kind: number, table: TableImpl<any>, id: Key, value: unknown, options?: WriteOptions): Promise<any>
  submit(
    kind: number,
    table: TableImpl<any>,
    id: Key,
    value: unknown,
    options: WriteOptions | undefined,
    listener: WriteListener<any>,
  ): void
}

/** A table: synchronous reads straight from LMDB, writes handed to the store's write queue. */
export class TableImpl<V> implements Table<V> {
  constructor(
    readonly store: TableHost,
    readonly name: string,
    /** @internal */ readonly db: Db,
    readonly logged: boolean,
    /** Change events carry the value each write replaced (TableOptions.previous; once on, it stays on). */
    public previous = false,
    /** Its records may hold log entries' values: it is logged, or was when opened before. */
    readonly referred = logged,
  ) {}

  get(id: Key): V | undefined {
    const record = this.read(id)
    return record !== undefined && record.length >= 3 ? (record[2] as V) : undefined
  }

  getEntry(id: Key): RecordEntry<V> | undefined {
    const record = this.read(id)
    return record !== undefined && record.length >= 3
      ? { id, value: record[2] as V, version: record[0] }
      : undefined
  }

  /** Version of the record or of its tombstone, with the node that wrote it (for replication). */
  getVersion(id: Key): RecordVersion | undefined {
    const record = this.read(id)
    return record === undefined
      ? undefined
      : { version: record[0], nodeId: record[1], deleted: record.length < 3 }
  }

  private read(id: Key): StoredRecord | undefined {
    if (this.store.closed) throw new StoreClosedError()
    try {
      return this.db.get(id) as StoredRecord | undefined
    } catch (error) {
      // an id LMDB cannot hold (too long, wrong type) is a caller error, like on writes
      checkKey(id)
      throw error
    }
  }

  put(id: Key, value: V, options?: WriteOptions): Promise<ChangeEvent<V>> {
    return this.store.write(PUT, this, id, value, options)
  }

  patch(id: Key, patch: Partial<V>, options?: WriteOptions): Promise<ChangeEvent<V>> {
    return this.store.write(PATCH, this, id, patch, options)
  }

  delete(id: Key, options?: WriteOptions): Promise<ChangeEvent<V> | undefined> {
    return this.store.write(DELETE, this, id, undefined, options)
  }

  message(id: Key, value: V, options?: WriteOptions): Promise<ChangeEvent<V>> {
    return this.store.write(MESSAGE, this, id, value, options)
  }

  submit(
    kind: WriteKind,
    id: Key,
    value: V | Partial<V> | undefined,
    options: WriteOptions | undefined,
    listener: WriteListener<V>,
  ): void {
    const code =
      kind === 'put'
        ? PUT
        : kind === 'message'
          ? MESSAGE
          : kind === 'delete'
            ? DELETE
            : kind === 'patch'
              ? PATCH
              : -1
    if (code === -1) throw new StorageError('STORAGE_INVALID_ARGUMENT', `unknown write kind ${kind}`)
    this.store.submit(code, this, id, value, options, listener)
  }

  *entries(range: RangeOptions = {}): Generator<RecordEntry<V>, void, undefined> {
    if (this.store.closed) throw new StoreClosedError()
    const { prefix, reverse = false } = range
    let offset = range.offset ?? 0
    let limit = range.limit ?? Number.POSITIVE_INFINITY
    if (limit <= 0) return
    let lower = range.start as any
    let upper = range.end as any
    if (prefix !== undefined && prefix !== '') {
      if (lower === undefined || compareKeys(lower, prefix) < 0) lower = prefix
      const prefixEnd = `${prefix}\u{10ffff}`
      if (upper === undefined || compareKeys(upper, prefixEnd) > 0) upper = prefixEnd
    }
    const iterable = reverse
      ? this.db.getRange({
          start: upper,
          exclusiveStart: upper !== undefined,
          end: lower,
          inclusiveEnd: lower !== undefined,
          reverse: true,
        })
      : this.db.getRange({ start: lower, end: upper })
    for (const { key, value } of iterable) {
      if ((value as StoredRecord).length < 3) continue
      if (prefix !== undefined && !matchesPrefix(key, prefix)) continue
      if (offset > 0) {
        offset--
        continue
      }
      yield { id: key, value: (value as StoredRecord)[2] as V, version: (value as StoredRecord)[0] }
      if (--limit <= 0) return
    }
  }

  count(range: RangeOptions = {}): number {
    if (this.store.closed) throw new StoreClosedError()
    // tables without a change log never hold tombstones: let LMDB count
    if (!this.logged && range.prefix === undefined && range.offset === undefined && range.limit === undefined)
      return this.db.getCount({ start: range.start as any, end: range.end as any })
    let n = 0
    for (const _ of this.entries(range)) n++
    return n
  }
}
