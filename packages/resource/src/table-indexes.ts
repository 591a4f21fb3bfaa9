import { compareText } from '@proj/query'
import type { Key, Table as StorageTable, Store, WriteTransaction } from '@proj/storage'
import { type IndexKind, idOfKey, indexKey, indexValues } from './index-keys.js'
import { ownValue, storedName } from './own-keys.js'
import type { TableDefinition } from './schema.js'

/** Unlogged storage table that records which indexes are complete: key `[table, attribute]`. */
const INDEX_META_TABLE = '__indexes'
/** Prefix of index storage tables: `__index/{table}/{attribute}`, keys `[kind, value, ...id]`. */
const INDEX_TABLE_PREFIX = '__index/'

const BUILD_BATCH = 1000
const PRESENT = 1
/**
 * Version of the key layout, kept with each index's completion mark: an index built with another
 * layout is rebuilt at start. 2: typed keys `[kind, value, ...id]` (ranges, null, list elements).
 */
const INDEX_FORMAT = 2

/**
 * The value an index files for a record: the attribute, or the record id for the primary-key attribute
 * when the value does not hold it (like list conditions).
 */
function attributeValue(
  id: Key,
  value: unknown,
  attribute: string,
  primaryKey: string | undefined,
  stored: boolean,
): unknown {
  const name = stored ? storedName(attribute) : attribute
  const isObject = value !== null && typeof value === 'object'
  if (attribute === primaryKey && (!isObject || !Object.hasOwn(value as object, name))) return id
  return ownValue(value, name)
}

/** Counts what a query read: index keys, and records fetched (by id or by a scan). */
export interface ReadCounter {
  keys: number
  records: number
}

/** A run of keys of one kind: `low`/`high` undefined are unbounded; equal bounds are one value. */
export interface IndexRange {
  readonly kind: IndexKind
  readonly low?: number | string
  readonly high?: number | string
  readonly lowOpen?: boolean
  readonly highOpen?: boolean
}

function order(a: number | string, b: number | string): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b
  return compareText(String(a), String(b))
}

/** One `@indexed` attribute: an unlogged storage table of `[kind, value, ...id]` keys. */
export class SecondaryIndex {
  constructor(
    readonly attribute: string,
    readonly table: StorageTable<number>,
    /** The attribute is a `Date`: dates are filed as epoch milliseconds. */
    readonly isDate: boolean,
  ) {}

  /** The keys of a record's value of this attribute (`stored`: the value as the table holds it). */
  keys(id: Key, value: unknown, primaryKey: string | undefined, stored: boolean): Key[] {
    return indexValues(attributeValue(id, value, this.attribute, primaryKey, stored), this.isDate).map((v) =>
      indexKey(v, id),
    )
  }

  /**
   * The ids in a range, in key order (by value, then id). With `after`, an equality range continues
   * after that id (keyset pagination on one value). Every key read is counted.
   */
  *scan(range: IndexRange, counter?: ReadCounter, after?: Key): Generator<Key, void, undefined> {
    const { kind, low, high, lowOpen, highOpen } = range
    const start: Key =
      after !== undefined && low !== undefined
        ? indexKey({ kind, value: low }, after)
        : low === undefined
          ? [kind]
          : [kind, low]
    for (const { id: key } of this.table.entries({ start })) {
      if (counter) counter.keys++
      if (!Array.isArray(key) || key[0] !== kind) return
      const value = key[1] as number | string
      if (high !== undefined) {
        const c = order(value, high)
        if (c > 0 || (c === 0 && highOpen)) return
      }
      if (low !== undefined && lowOpen && order(value, low) === 0) continue
      const id = idOfKey(key)
      if (after !== undefined && low !== undefined && order(value, low) === 0 && sameKey(id, after)) continue
      yield id
    }
  }

  /** How many keys a range holds, counting at most `cap`. */
  count(range: IndexRange, cap: number, counter?: ReadCounter): number {
    let n = 0
    for (const _ of this.scan(range, counter)) if (++n >= cap) break
    return n
  }
}

function sameKey(a: Key, b: Key): boolean {
  if (!Array.isArray(a) || !Array.isArray(b)) return a === b
  return a.length === b.length && a.every((v, i) => v === b[i])
}

/**
 * The secondary indexes of one storage table, shared by every resource class on it. Index entries
 * are written in the same storage transaction as the record. Writes to one record are serialized
 * (only on indexed tables), so each write reads the value it replaces exactly: the store applies
 * queued transactions later, and two overlapping writes to one id would otherwise both remove the
 * same old entry and leave a stale one.
 */
export class TableIndexes {
  readonly indexes: readonly SecondaryIndex[]
  readonly #byAttribute = new Map<string, SecondaryIndex>()
  readonly #primaryKey: string | undefined
  readonly #locks = new Map<string, Promise<void>>()

  /** `indexed: false` makes a set without indexes (a Table constructed outside a runtime). */
  constructor(
    readonly store: Store,
    readonly definition: TableDefinition,
    indexed = true,
  ) {
    this.#primaryKey = definition.primaryKey?.name
    const indexes: SecondaryIndex[] = []
    for (const attribute of definition.attributes) {
      if (!attribute.indexed || !indexed) continue
      const type = attribute.type.kind === 'list' ? attribute.type.of : attribute.type
      const index = new SecondaryIndex(
        attribute.name,
        store.table<number>(`${INDEX_TABLE_PREFIX}${definition.storageName}/${attribute.name}`, {
          log: false,
        }),
        type.kind === 'scalar' && type.name === 'Date',
      )
      indexes.push(index)
      this.#byAttribute.set(attribute.name, index)
    }
    this.indexes = indexes
  }

  get size(): number {
    return this.indexes.length
  }

  get(attribute: string): SecondaryIndex | undefined {
    return this.#byAttribute.get(attribute)
  }

  /** Runs `write` after every earlier write to `id` has settled (immediately when nothing is indexed). */
  serial<T>(id: Key, write: () => Promise<T>): Promise<T> {
    if (this.indexes.length === 0) return write()
    const key = typeof id === 'string' ? `s${id}` : JSON.stringify(id)
    const previous = this.#locks.get(key)
    const result = previous === undefined ? write() : previous.then(write)
    const settled = result.then(noop, noop)
    this.#locks.set(key, settled)
    void settled.then(() => {
      if (this.#locks.get(key) === settled) this.#locks.delete(key)
    })
    return result
  }

  /**
   * Adds the index changes for a record going from `before` (as stored) to `after` (as written;
   * undefined = absent).
   */
  write(txn: WriteTransaction, id: Key, before: unknown, after: unknown): void {
    const pk = this.#primaryKey
    for (const index of this.indexes) {
      const old = before === undefined ? [] : index.keys(id, before, pk, true)
      const now = after === undefined ? [] : index.keys(id, after, pk, false)
      const kept = new Set(now.map((key) => JSON.stringify(key)))
      for (const key of old) if (!kept.has(JSON.stringify(key))) txn.delete(index.table, key)
      for (const key of now) txn.put(index.table, key, PRESENT)
    }
  }

  /**
   * Builds the indexes that are not marked complete (new `@indexed` attributes on a table with data,
   * or a build a crash interrupted) and forgets indexes the schema no longer declares. Runs before
   * the runtime accepts writes.
   */
  async prepare(records: StorageTable): Promise<void> {
    const meta = this.store.table<{ built: number; format?: number }>(INDEX_META_TABLE, { log: false })
    const name = this.definition.storageName
    for (const { id } of meta.entries({ prefix: name })) {
      const attribute = Array.isArray(id) ? id[1] : undefined
      if (typeof attribute !== 'string' || this.#byAttribute.has(attribute)) continue
      // No longer indexed: its entries would go stale, so drop them; a later @indexed rebuilds.
      await clear(this.store, this.store.table(`${INDEX_TABLE_PREFIX}${name}/${attribute}`, { log: false }))
      await this.store.transaction((txn) => txn.delete(meta, id), LOCAL)
    }
    // Not built yet, or built with another key layout.
    const missing = this.indexes.filter((index) => meta.get([name, index.attribute])?.format !== INDEX_FORMAT)
    if (missing.length === 0) return
    for (const index of missing) await clear(this.store, index.table)
    const pk = this.#primaryKey
    // Page by key instead of holding one read cursor open across the awaited commits.
    let start: Key | undefined
    for (;;) {
      const range = start === undefined ? { limit: BUILD_BATCH } : { start, limit: BUILD_BATCH + 1 }
      const page = [...records.entries(range)].filter((e) => start === undefined || !sameKey(e.id, start))
      if (page.length === 0) break
      await this.store.transaction((txn) => {
        for (const { id, value } of page) {
          for (const index of missing) {
            for (const key of index.keys(id, value, pk, true)) txn.put(index.table, key, PRESENT)
          }
        }
      }, LOCAL)
      start = page[page.length - 1]!.id
    }
    await this.store.transaction((txn) => {
      for (const index of missing) {
        txn.put(meta, [name, index.attribute], { built: Date.now(), format: INDEX_FORMAT })
      }
    }, LOCAL)
  }
}

async function clear(store: Store, table: StorageTable): Promise<void> {
  for (;;) {
    const ids = [...table.entries({ limit: BUILD_BATCH })].map((e) => e.id)
    if (ids.length === 0) return
    await store.transaction((txn) => {
      for (const id of ids) txn.delete(table, id)
    }, LOCAL)
  }
}

function noop(): void {}

/**
 * Building or dropping an index is each node's own work over its own (converged) records: never
 * replicated (a cluster's replicator would otherwise send every node's build to every other).
 */
const LOCAL = { local: true }
