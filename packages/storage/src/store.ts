import { randomInt } from 'node:crypto'
import { asBinary, compareKeys, type Database, open, type RootDatabase } from 'lmdb'
import { ChangeFeed, matchesPrefix } from './change-feed.js'
import { Clock } from './clock.js'
import {
  ConflictError,
  InvalidValueError,
  LogTruncatedError,
  StaleWriteError,
  StorageError,
  StoreClosedError,
  VersionMismatchError,
} from './errors.js'
import {
  checkKey,
  decodeLogEntry,
  decodeValue,
  encodeLogEntry,
  encodeRecord,
  encodeTombstone,
  encodeValue,
  FORMAT_VERSION,
  keyString,
  RECORD_HEADER,
  type StoredRecord,
  stampRecord,
  TYPES,
} from './record-format.js'
import type {
  ChangeEvent,
  ChangeFilter,
  ChangeListener,
  ChangeLog,
  Key,
  LogReadOptions,
  OpenStoreOptions,
  RangeOptions,
  RecordEntry,
  RecordVersion,
  Store,
  Table,
  TableOptions,
  WriteOptions,
  WriteTransaction,
} from './types.js'

const PUT = 0
const PATCH = 1
const DELETE = 2
const MESSAGE = 3

const META_DB = '__meta'
const LOG_DB = '__log'
const TOMBSTONE_DB = '__tombstones'
const TABLE_PREFIX = 't/'
const COMPACTION_CHUNK = 5000
const DEFAULT_TOMBSTONE_AGE_MS = 7 * 24 * 3600 * 1000
const DEFAULT_COMPACTION_INTERVAL_MS = 60_000
const MAX_NODE_ID = 0xffffffff
const BINARY_FIELD = '\x10binary-data\x02'

type Resolve = (value: any) => void
type Reject = (error: unknown) => void

/** One write, from the call that made it to its commit. */
class Op {
  /** What goes into the table db (stamped record or tombstone), when anything does. */
  record: Buffer | undefined = undefined
  remove = false
  log: Buffer | undefined = undefined
  result: ChangeEvent | undefined = undefined
  failed: unknown = undefined
  resolve: Resolve | undefined = undefined
  reject: Reject | undefined = undefined

  constructor(
    readonly kind: number,
    readonly table: TableImpl<any>,
    readonly id: Key,
    /** put: record buffer with an unstamped header; patch: the packed patch; message: the packed value. */
    readonly bytes: Buffer | undefined,
    readonly meta: Buffer | undefined,
    readonly options: WriteOptions | undefined,
    readonly event: ChangeEvent,
  ) {}
}

/** The writes of one `store.transaction()`: all commit or none does. */
class Group {
  readonly ops: Op[] = []
  readonly events: ChangeEvent[] = []
  failed: unknown = undefined
  resolve: Resolve | undefined = undefined
  reject: Reject | undefined = undefined
}

/** The writes applied in one LMDB transaction (one sync). */
class Batch {
  items: (Op | Group)[] = []
  readonly events: ChangeEvent[] = []
  lastCursor = 0
  readonly run: () => void
  constructor(store: StoreImpl) {
    this.run = () => store.applyBatch(this)
  }
}

const noop = () => {}
const APPEND = { append: true }

// lmdb-js types keys as mutable arrays; ours are readonly, checked by checkKey
type Db = Database<any, any>

/**
 * Opens (or creates) a store: one LMDB environment at `options.path` holding a named database per
 * table, the change log and a meta database with the on-disk format version. Resolves once the store
 * is ready; rejects with `VersionMismatchError` when the files were written by an incompatible format.
 *
 * @example
 * const store = await openStore({ path: './data' })
 * const dogs = store.table<{ name: string }>('Dog')
 * const event = await dogs.put('123', { name: 'Rex' }) // resolved = committed and synced
 * dogs.get('123') // { name: 'Rex' }
 * store.onChange((e) => console.log(e.type, e.id), { table: 'Dog' })
 * for (const e of store.log.readSince({ after: 0 })) console.log(e.cursor, e.type)
 * await store.close()
 */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  return StoreImpl.open(options)
}

export class StoreImpl implements Store {
  readonly path: string
  readonly clock: Clock
  readonly log: ChangeLogImpl
  readonly nodeId: number
  /** @internal */ readonly env: RootDatabase
  /** @internal */ readonly metaDb: Db
  /** @internal */ readonly logDb: Db
  /** @internal */ readonly tombstoneDb: Db
  private readonly tables = new Map<string, TableImpl<any>>()
  private readonly knownTables: Record<string, { log: boolean }>
  private readonly feed: ChangeFeed
  private readonly waitForFlush: boolean
  private readonly retention: NonNullable<OpenStoreOptions['retention']>
  private readonly tombstoneMaxAgeMs: number
  private readonly onError: (error: unknown) => void
  /** Reused for every `asBinary` write inside a transaction (lmdb-js reads it synchronously). */
  private readonly binary = asBinary(Buffer.alloc(0)) as unknown as Record<string, Buffer>
  private queue: (Op | Group)[] = []
  private scheduled: Batch | undefined = undefined
  private tail: Promise<void> = Promise.resolve()
  private compacting: Promise<number> | undefined = undefined
  private timer: NodeJS.Timeout | undefined = undefined
  private closing: Promise<void> | undefined = undefined
  /** @internal */ closed = false
  /** Highest cursor handed out (committed or in flight). */
  private nextCursor: number
  /** @internal Highest committed, durable cursor; the feed has delivered everything up to it. */
  lastCursor: number
  /** @internal Highest cursor compaction removed; readers asking for older cursors fell behind. */
  droppedUpTo: number

  static open(options: OpenStoreOptions): StoreImpl {
    if (typeof options?.path !== 'string' || options.path === '')
      throw new StorageError('STORAGE_INVALID_ARGUMENT', 'openStore needs a path')
    const overlappingSync = !options.noSync && process.platform !== 'win32'
    const env = open({
      path: options.path,
      maxDbs: (options.maxTables ?? 250) + 3,
      noSync: options.noSync === true,
      overlappingSync,
      // values are plain MessagePack maps: decode them as objects, like they were written
      mapsAsObjects: true,
    } as Parameters<typeof open>[0])
    try {
      return new StoreImpl(env, options, overlappingSync)
    } catch (error) {
      env.close()
      throw error
    }
  }

  private constructor(env: RootDatabase, options: OpenStoreOptions, overlappingSync: boolean) {
    this.path = options.path
    this.env = env
    this.waitForFlush = overlappingSync
    this.metaDb = env.openDB({ name: META_DB })
    const format = this.metaDb.get('format')
    if (format === undefined) this.metaDb.putSync('format', FORMAT_VERSION)
    else if (format !== FORMAT_VERSION) throw new VersionMismatchError(options.path, format, FORMAT_VERSION)
    this.logDb = env.openDB({ name: LOG_DB })
    this.tombstoneDb = env.openDB({ name: TOMBSTONE_DB })

    const storedNodeId = this.metaDb.get('nodeId') as number | undefined
    const nodeId = options.nodeId ?? storedNodeId ?? randomInt(1, 2 ** 31)
    if (!Number.isInteger(nodeId) || nodeId < 0 || nodeId > MAX_NODE_ID)
      throw new StorageError('STORAGE_INVALID_ARGUMENT', `nodeId must be an integer in 0..${MAX_NODE_ID}`)
    if (nodeId !== storedNodeId) this.metaDb.putSync('nodeId', nodeId)
    this.nodeId = nodeId

    const state = this.metaDb.get('state') as [number, number] | undefined
    let lastTimestamp = state?.[0] ?? 0
    let cursor = state?.[1] ?? 0
    for (const { key, value } of this.logDb.getRange({ reverse: true, limit: 1 })) {
      if (key > cursor) cursor = key
      const ts = value[0][3] as number
      if (ts > lastTimestamp) lastTimestamp = ts
    }
    this.nextCursor = this.lastCursor = cursor
    this.droppedUpTo = (this.metaDb.get('droppedUpTo') as number | undefined) ?? 0
    this.knownTables = { ...(this.metaDb.get('tables') ?? {}) }
    this.clock = new Clock(nodeId, lastTimestamp, options.wallClock ?? (() => Date.now() * 1000))
    this.log = new ChangeLogImpl(this)
    this.retention = options.retention ?? {}
    this.tombstoneMaxAgeMs =
      options.retention?.tombstoneMaxAgeMs ?? options.retention?.maxAgeMs ?? DEFAULT_TOMBSTONE_AGE_MS
    this.onError = options.onError ?? ((error) => console.error('@proj/storage:', error))
    this.feed = new ChangeFeed((error) => this.onError(error))
    const interval = options.compactionIntervalMs ?? DEFAULT_COMPACTION_INTERVAL_MS
    if (interval > 0) {
      this.timer = setInterval(() => {
        this.compact().catch((error) => {
          if (!(error instanceof StoreClosedError)) this.onError(error)
        })
      }, interval)
      this.timer.unref()
    }
  }

  table<V = unknown>(name: string, options?: TableOptions): Table<V> {
    this.assertOpen()
    const existing = this.tables.get(name)
    if (existing !== undefined) return existing as TableImpl<V>
    if (typeof name !== 'string' || name === '')
      throw new StorageError('STORAGE_INVALID_ARGUMENT', 'a table name must be a non-empty string')
    const logged = options?.log ?? true
    const table = new TableImpl<V>(this, name, this.tableDb(name), logged)
    this.tables.set(name, table)
    if (this.knownTables[name]?.log !== logged) {
      this.knownTables[name] = { log: logged }
      this.metaDb.put('tables', this.knownTables).catch((error) => this.onError(error))
    }
    return table
  }

  tableNames(): string[] {
    return Object.keys(this.knownTables).sort()
  }

  /** @internal */
  tableDb(name: string): Db {
    return this.tables.get(name)?.db ?? this.env.openDB({ name: TABLE_PREFIX + name })
  }

  onChange(listener: ChangeListener, filter?: ChangeFilter): () => void {
    return this.feed.add(listener, filter)
  }

  transaction(fn: (txn: WriteTransaction) => void): Promise<ChangeEvent[]> {
    if (this.closing !== undefined) return Promise.reject(new StoreClosedError())
    const group = new Group()
    const add = (kind: number, table: Table<any>, id: Key, value: unknown, options?: WriteOptions) => {
      try {
        if (!(table instanceof TableImpl) || table.store !== this)
          throw new StorageError('STORAGE_INVALID_ARGUMENT', 'the table does not belong to this store')
        group.ops.push(this.makeOp(kind, table, id, value, options))
      } catch (error) {
        group.failed ??= error
        throw error
      }
    }
    const txn: WriteTransaction = {
      put: (table, id, value, options) => add(PUT, table, id, value, options),
      patch: (table, id, patch, options) => add(PATCH, table, id, patch, options),
      delete: (table, id, options) => add(DELETE, table, id, undefined, options),
      message: (table, id, value, options) => add(MESSAGE, table, id, value, options),
    }
    try {
      fn(txn)
    } catch (error) {
      return Promise.reject(error)
    }
    if (group.failed !== undefined) return Promise.reject(group.failed)
    if (group.ops.length === 0) return Promise.resolve([])
    return new Promise((resolve, reject) => {
      group.resolve = resolve
      group.reject = reject
      this.enqueue(group)
    })
  }

  /** @internal */
  write(kind: number, table: TableImpl<any>, id: Key, value: unknown, options?: WriteOptions): Promise<any> {
    if (this.closing !== undefined) return Promise.reject(new StoreClosedError())
    let op: Op
    try {
      op = this.makeOp(kind, table, id, value, options)
    } catch (error) {
      return Promise.reject(error)
    }
    return new Promise((resolve, reject) => {
      op.resolve = resolve
      op.reject = reject
      this.enqueue(op)
    })
  }

  /** Validates and encodes at call time, so a bad value fails its own call and later mutation is harmless. */
  private makeOp(kind: number, table: TableImpl<any>, id: Key, value: unknown, options?: WriteOptions): Op {
    checkKey(id)
    let bytes: Buffer | undefined
    if (kind === PUT) bytes = encodeRecord(value)
    else if (kind === MESSAGE) bytes = encodeValue(value)
    else if (kind === PATCH) {
      if (value === null || typeof value !== 'object' || Array.isArray(value))
        throw new InvalidValueError('a patch must be a plain object')
      bytes = encodeValue(value)
    }
    if (options !== undefined) checkWriteOptions(options)
    const meta = options?.meta !== undefined && table.logged ? encodeValue(options.meta) : undefined
    const event: ChangeEvent = {
      type: TYPES[kind]!,
      table: table.name,
      id,
      value: kind === PUT || kind === MESSAGE ? value : undefined,
      patch: kind === PATCH ? (value as object) : undefined,
      timestamp: 0,
      cursor: 0,
      nodeId: 0,
      user: options?.user,
      meta: options?.meta,
    }
    return new Op(kind, table, id, bytes, meta, options, event)
  }

  private enqueue(item: Op | Group): void {
    this.queue.push(item)
    if (this.scheduled === undefined) this.schedule()
  }

  private schedule(): void {
    const batch = new Batch(this)
    this.scheduled = batch
    // A child transaction: lmdb-js commits a plain async transaction's writes even when its callback
    // throws, which would keep half a batch (a record without its log entry) that callers see rejected.
    const committed = this.env.childTransaction(batch.run) as Promise<unknown>
    // `env.flushed` is the flush of the last queued transaction when it is read: read it now, while that
    // is this batch's, so the batch waits for its own fsync and not for a later batch's too.
    const durable = this.waitForFlush ? flushedAfter(committed, ownFlush(this.env)) : committed
    durable.catch(noop)
    // completion runs strictly in batch order, so the feed sees events in commit order
    this.tail = this.tail.then(
      () =>
        durable.then(
          () => this.complete(batch),
          (error) => this.fail(batch, error),
        ),
      noop,
    )
  }

  /** @internal Runs inside the LMDB write transaction: plans and writes every queued item. */
  applyBatch(batch: Batch): void {
    const items = this.queue
    this.queue = []
    this.scheduled = undefined
    batch.items = items
    let wrote = false
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!
      if (item instanceof Op) {
        let planned: boolean
        try {
          planned = this.plan(item, undefined)
        } catch (error) {
          item.failed = error
          continue
        }
        // a failed write (after the plan) aborts the batch: it may have written part of this op
        if (planned) {
          this.apply(item, batch)
          wrote = true
        }
        continue
      }
      const cursorBefore = this.nextCursor
      try {
        const overlay = new Map<string, StoredRecord | null>()
        for (const op of item.ops) this.plan(op, overlay)
      } catch (error) {
        // nothing of the group was written yet: planning precedes every write
        item.failed = error
        this.nextCursor = cursorBefore
        continue
      }
      for (const op of item.ops) {
        if (op.result === undefined) continue
        this.apply(op, batch)
        item.events.push(op.result)
        wrote = true
      }
    }
    if (wrote) this.metaDb.putSync('state', [this.clock.last, this.nextCursor])
  }

  /**
   * Checks conditions, stamps the write and encodes what it stores; writes nothing. Returns false for
   * a write that has nothing to do (deleting an absent record).
   */
  private plan(op: Op, overlay: Map<string, StoredRecord | null> | undefined): boolean {
    const { kind, table, options, event } = op
    op.record = undefined
    op.remove = false
    op.log = undefined
    op.result = undefined
    const explicit = options?.timestamp
    let timestamp: number
    const nodeId = options?.nodeId ?? this.nodeId
    if (explicit !== undefined) {
      timestamp = explicit
      this.clock.observe(explicit)
    } else timestamp = this.clock.now()

    let current: StoredRecord | undefined
    if (
      kind === PATCH ||
      kind === DELETE ||
      (kind === PUT && (explicit !== undefined || options?.ifVersion !== undefined))
    ) {
      const key = overlay !== undefined ? `${table.name}\u0000${keyString(op.id)}` : ''
      const staged = overlay?.get(key)
      current =
        staged !== undefined ? (staged ?? undefined) : (table.db.get(op.id) as StoredRecord | undefined)
      if (explicit !== undefined && current !== undefined) {
        const stored = current[0]
        if (!(explicit > stored || (explicit === stored && nodeId > current[1])))
          throw new StaleWriteError(explicit, stored)
      }
      if (options?.ifVersion !== undefined) {
        const actual = current !== undefined && current.length === 3 ? current[0] : 0
        if (actual !== options.ifVersion) throw new ConflictError(options.ifVersion, actual)
      }
    }

    let valueBytes: Buffer | undefined
    let patchBytes: Buffer | undefined
    let staged: StoredRecord | null | undefined
    switch (kind) {
      case PUT:
        op.record = stampRecord(op.bytes!, timestamp, nodeId)
        valueBytes = op.record.subarray(RECORD_HEADER)
        staged = [timestamp, nodeId, event.value]
        break
      case PATCH: {
        const base = current !== undefined && current.length === 3 ? current[2] : undefined
        if (base !== undefined && !isPlainObject(base))
          throw new InvalidValueError('cannot patch a value that is not a plain object')
        const merged: Record<string, unknown> = base === undefined ? {} : { ...(base as object) }
        const patch = decodeValue(op.bytes!) as Record<string, unknown>
        for (const name in patch) {
          const v = patch[name]
          if (v === undefined) delete merged[name]
          else merged[name] = v
        }
        op.record = stampRecord(encodeRecord(merged), timestamp, nodeId)
        valueBytes = op.record.subarray(RECORD_HEADER)
        patchBytes = op.bytes
        event.value = merged
        staged = [timestamp, nodeId, merged]
        break
      }
      case DELETE:
        if ((current === undefined || current.length !== 3) && explicit === undefined) return false
        if (table.logged) {
          op.record = encodeTombstone(timestamp, nodeId)
          staged = [timestamp, nodeId]
        } else {
          op.remove = true
          staged = null
        }
        break
      default:
        valueBytes = op.bytes
    }
    event.timestamp = timestamp
    event.nodeId = nodeId
    if (table.logged) {
      event.cursor = ++this.nextCursor
      op.log = encodeLogEntry(
        kind,
        table.name,
        op.id,
        timestamp,
        nodeId,
        options?.user,
        valueBytes,
        patchBytes,
        op.meta,
      )
    }
    if (overlay !== undefined && staged !== undefined)
      overlay.set(`${table.name}\u0000${keyString(op.id)}`, staged)
    op.result = event
    return true
  }

  private apply(op: Op, batch: Batch): void {
    const binary = this.binary
    const db = op.table.db
    if (op.record !== undefined) {
      binary[BINARY_FIELD] = op.record
      db.putSync(op.id, binary)
    } else if (op.remove) db.removeSync(op.id)
    if (op.log !== undefined) {
      const event = op.result!
      binary[BINARY_FIELD] = op.log
      // Cursors only grow, so the log is appended (MDB_APPEND): full pages instead of the half-full ones
      // that splitting in the middle leaves behind. A refused append (never expected) is a plain put.
      if (!(this.logDb.putSync(event.cursor, binary, APPEND) as unknown as boolean))
        this.logDb.putSync(event.cursor, binary)
      if (op.kind === DELETE)
        this.tombstoneDb.putSync([event.timestamp, event.cursor], [op.table.name, op.id])
      batch.events.push(event)
      batch.lastCursor = event.cursor
    }
  }

  private complete(batch: Batch): void {
    if (batch.lastCursor > this.lastCursor) this.lastCursor = batch.lastCursor
    if (this.feed.size > 0) for (const event of batch.events) this.feed.dispatch(event)
    for (const item of batch.items) {
      if (item.failed !== undefined) item.reject!(item.failed)
      else if (item instanceof Op) item.resolve!(item.result)
      else item.resolve!(item.events)
    }
  }

  private fail(batch: Batch, error: unknown): void {
    for (const item of batch.items) {
      item.reject!(
        item.failed ??
          new StorageError('STORAGE_WRITE_FAILED', `commit failed: ${(error as Error)?.message}`, {
            cause: error,
          }),
      )
    }
  }

  compact(): Promise<number> {
    if (this.closing !== undefined) return Promise.reject(new StoreClosedError())
    this.compacting ??= this.runCompaction().finally(() => {
      this.compacting = undefined
    })
    return this.compacting
  }

  private async runCompaction(): Promise<number> {
    let removed = 0
    const { maxAgeMs, maxEvents } = this.retention
    if (maxAgeMs !== undefined || maxEvents !== undefined) {
      const cutoff = maxAgeMs !== undefined ? this.clock.now() - maxAgeMs * 1000 : Number.NEGATIVE_INFINITY
      let excess = maxEvents !== undefined ? this.logCount() - maxEvents : 0
      for (let done = false; !done; ) {
        const keys: number[] = []
        for (const { key, value } of this.logDb.getRange({ limit: COMPACTION_CHUNK })) {
          if (excess > 0 || (value[0][3] as number) < cutoff) {
            keys.push(key)
            excess--
          } else {
            done = true
            break
          }
        }
        if (keys.length === 0) break
        if (keys.length < COMPACTION_CHUNK) done = true
        // raised before the commit: a reader racing this compaction is told it fell behind, never
        // handed a log with a silent gap
        const last = keys[keys.length - 1]!
        if (last > this.droppedUpTo) this.droppedUpTo = last
        const droppedUpTo = this.droppedUpTo
        await this.env.transaction(() => {
          for (const key of keys) this.logDb.removeSync(key)
          this.metaDb.putSync('droppedUpTo', droppedUpTo)
        })
        removed += keys.length
      }
    }
    await this.compactTombstones()
    return removed
  }

  private logCount(): number {
    const stats = this.logDb.getStats() as { entryCount?: number }
    return stats.entryCount ?? this.logDb.getCount()
  }

  private async compactTombstones(): Promise<void> {
    const cutoff = this.clock.now() - this.tombstoneMaxAgeMs * 1000
    for (;;) {
      const expired = [...this.tombstoneDb.getRange({ end: [cutoff], limit: COMPACTION_CHUNK })]
      if (expired.length === 0) return
      const dbs = new Map<string, Db>()
      for (const { value } of expired) if (!dbs.has(value[0])) dbs.set(value[0], this.tableDb(value[0]))
      await this.env.transaction(() => {
        for (const { key, value } of expired) {
          const db = dbs.get(value[0])!
          const record = db.get(value[1]) as StoredRecord | undefined
          // a later put replaced the tombstone, or a later delete wrote a newer one: leave it
          if (record !== undefined && record.length === 2 && record[0] === (key as number[])[0])
            db.removeSync(value[1])
          this.tombstoneDb.removeSync(key)
        }
      })
      if (expired.length < COMPACTION_CHUNK) return
    }
  }

  /** @internal */
  assertOpen(): void {
    if (this.closed) throw new StoreClosedError()
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.timer !== undefined) clearInterval(this.timer)
      await this.compacting?.catch(noop)
      await this.tail
      this.closed = true
      await this.env.close()
    })()
    return this.closing
  }
}

function ownFlush(env: RootDatabase): Promise<unknown> {
  const flushed = env.flushed as PromiseLike<unknown>
  // the executor runs now, so `then` reads lmdb-js's current flush promise at once
  return new Promise((resolve, reject) => {
    flushed.then(resolve, reject)
  })
}

function flushedAfter(committed: Promise<unknown>, flushed: Promise<unknown>): Promise<unknown> {
  flushed.catch(noop) // a failed commit rejects `committed`; this one is then never awaited
  return committed.then(() => flushed)
}

function checkWriteOptions(options: WriteOptions): void {
  const { timestamp, nodeId, ifVersion } = options
  if (
    timestamp !== undefined &&
    !(typeof timestamp === 'number' && Number.isFinite(timestamp) && timestamp > 0)
  )
    throw new StorageError('STORAGE_INVALID_ARGUMENT', 'timestamp must be a positive finite number')
  if (nodeId !== undefined && !(Number.isInteger(nodeId) && nodeId >= 0 && nodeId <= MAX_NODE_ID))
    throw new StorageError('STORAGE_INVALID_ARGUMENT', `nodeId must be an integer in 0..${MAX_NODE_ID}`)
  if (ifVersion !== undefined && !(typeof ifVersion === 'number' && Number.isFinite(ifVersion)))
    throw new StorageError('STORAGE_INVALID_ARGUMENT', 'ifVersion must be a finite number')
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

export class TableImpl<V> implements Table<V> {
  constructor(
    readonly store: StoreImpl,
    readonly name: string,
    /** @internal */ readonly db: Db,
    readonly logged: boolean,
  ) {}

  get(id: Key): V | undefined {
    const record = this.read(id)
    return record !== undefined && record.length === 3 ? (record[2] as V) : undefined
  }

  getEntry(id: Key): RecordEntry<V> | undefined {
    const record = this.read(id)
    return record !== undefined && record.length === 3
      ? { id, value: record[2] as V, version: record[0] }
      : undefined
  }

  /** Version of the record or of its tombstone, with the node that wrote it (for replication). */
  getVersion(id: Key): RecordVersion | undefined {
    const record = this.read(id)
    return record === undefined
      ? undefined
      : { version: record[0], nodeId: record[1], deleted: record.length !== 3 }
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
      if ((value as StoredRecord).length !== 3) continue
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

export class ChangeLogImpl implements ChangeLog {
  constructor(private readonly store: StoreImpl) {}

  readSince(options: LogReadOptions = {}): Iterable<ChangeEvent> {
    const store = this.store
    if (store.closed) throw new StoreClosedError()
    const { after, tables, limit } = options
    if (after !== undefined && after < store.droppedUpTo) throw new LogTruncatedError(after, this.firstCursor)
    return this.read(after, tables === undefined ? undefined : new Set(tables), limit, store.lastCursor)
  }

  private *read(
    after: number | undefined,
    tables: Set<string> | undefined,
    limit: number | undefined,
    last: number,
  ): Generator<ChangeEvent, void, undefined> {
    let remaining = limit ?? Number.POSITIVE_INFINITY
    if (remaining <= 0) return
    // only durable events the feed has already delivered: a reader that catches up from the log and
    // then subscribes to the feed sees no gap and no duplicate
    const range = this.store.logDb.getRange({
      start: after === undefined ? undefined : after + 1,
      end: last + 1,
    })
    for (const { key, value } of range) {
      if (tables !== undefined && !tables.has(value[0][1])) continue
      yield decodeLogEntry(key, value)
      if (--remaining <= 0) return
    }
  }

  get lastCursor(): number {
    return this.store.lastCursor
  }

  get firstCursor(): number {
    const store = this.store
    if (store.closed) throw new StoreClosedError()
    for (const key of store.logDb.getKeys({ limit: 1 })) return key
    return store.droppedUpTo > 0 ? store.lastCursor + 1 : 0
  }

  compact(): Promise<number> {
    return this.store.compact()
  }
}
