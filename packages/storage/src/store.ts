import { randomInt } from 'node:crypto'
import { open, type RootDatabase } from 'lmdb'
import { ChangeFeed } from './change-feed.js'
import { ChangeLogImpl } from './change-log.js'
import { Clock } from './clock.js'
import { type CommitListener, CommitObservers } from './commit-stats.js'
import { Compactor } from './compaction.js'
import { CURSOR_INDEX_DB, CursorIndex } from './cursor-index.js'
import { Cursors } from './cursors.js'
import { type Db, LOG_DB, META_DB, TABLE_PREFIX, TOMBSTONE_DB } from './databases.js'
import { StorageError, StoreClosedError, VersionMismatchError } from './errors.js'
import { OUTBOX_DB, Outbox } from './outbox.js'
import { RecordEncoder } from './record-decode.js'
import { FORMAT_VERSION, READABLE_FORMATS } from './record-format.js'
import { Replication } from './replication.js'
import { TableImpl } from './table.js'
import type {
  ChangeEvent,
  ChangeFilter,
  ChangeListener,
  Key,
  OpenStoreOptions,
  Store,
  Table,
  TableOptions,
  TransactionOptions,
  WriteListener,
  WriteOptions,
  WriteTransaction,
} from './types.js'
import { DELETE, Group, MAX_NODE_ID, MESSAGE, makeOp, type Op, PATCH, PUT } from './write-plan.js'
import { notify, REPLICATED_KEY, settleLater, WriteQueue } from './write-queue.js'

const DEFAULT_COMPACTION_INTERVAL_MS = 60_000

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

/** Address space reserved for the data file's map (64 GiB; not memory, not disk). */
const INITIAL_MAP_SIZE = 2 ** 36

/** The store: opens the environment, keeps its metadata and tables, and closes it. */
class StoreImpl implements Store {
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
  private readonly writes: WriteQueue
  private readonly commits: CommitObservers
  private readonly compactor: Compactor
  private readonly onError: (error: unknown) => void
  private readonly replication: Replication | undefined
  readonly outbox: Outbox | undefined
  private closing: Promise<void> | undefined = undefined
  /** @internal */ closed = false

  static open(options: OpenStoreOptions): StoreImpl {
    if (typeof options?.path !== 'string' || options.path === '')
      throw new StorageError('STORAGE_INVALID_ARGUMENT', 'openStore needs a path')
    const overlappingSync = !options.noSync && process.platform !== 'win32'
    const env = open({
      path: options.path,
      maxDbs: (options.maxTables ?? 250) + 5,
      noSync: options.noSync === true,
      overlappingSync,
      // values are plain MessagePack maps: decode them as objects, like they were written
      mapsAsObjects: true,
      // One map for the file's life: lmdb-js starts at 128 KiB and doubles by mapping the file again,
      // keeping the earlier maps, so each page read through several maps counted several times in RSS
      // (60 MB of maps for a 39 MB file after 100,000 retained messages; 36 MB with one map). The map is
      // address space only (no write map: the file grows as before); lmdb-js still grows it when full.
      // Windows is left alone (its maps may grow the file to the map size).
      mapSize: process.platform === 'win32' ? undefined : INITIAL_MAP_SIZE,
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
    this.metaDb = env.openDB({ name: META_DB })
    const format = this.metaDb.get('format')
    // an earlier format this one reads is marked as this one, since the next write may use its layout
    if (format === undefined || READABLE_FORMATS.includes(format))
      this.metaDb.putSync('format', FORMAT_VERSION)
    else if (format !== FORMAT_VERSION) throw new VersionMismatchError(options.path, format, FORMAT_VERSION)
    this.logDb = env.openDB({ name: LOG_DB })
    this.tombstoneDb = env.openDB({ name: TOMBSTONE_DB })

    const storedNodeId = this.metaDb.get('nodeId') as number | undefined
    const nodeId = options.nodeId ?? storedNodeId ?? randomInt(1, 2 ** 31)
    if (!Number.isInteger(nodeId) || nodeId < 0 || nodeId > MAX_NODE_ID)
      throw new StorageError('STORAGE_INVALID_ARGUMENT', `nodeId must be an integer in 0..${MAX_NODE_ID}`)
    if (nodeId !== storedNodeId) this.metaDb.putSync('nodeId', nodeId)
    this.nodeId = nodeId

    // the high-water marks: the state a batch stored, or the newest log entry when that is newer
    const state = this.metaDb.get('state') as [number, number] | undefined
    let lastTimestamp = state?.[0] ?? 0
    let cursor = state?.[1] ?? 0
    for (const { key, value } of this.logDb.getRange({ reverse: true, limit: 1 })) {
      if (key > cursor) cursor = key
      const ts = value[0][3] as number
      if (ts > lastTimestamp) lastTimestamp = ts
    }
    const position = (this.metaDb.get(REPLICATED_KEY) as number | undefined) ?? 0
    const cursors = new Cursors(cursor, (this.metaDb.get('droppedUpTo') as number | undefined) ?? 0, position)
    const index = new CursorIndex(env.openDB({ name: CURSOR_INDEX_DB }))
    this.knownTables = { ...(this.metaDb.get('tables') ?? {}) }
    this.clock = new Clock(nodeId, lastTimestamp, options.wallClock ?? (() => Date.now() * 1000))
    const local = options.replicator?.commitsLocally === true
    this.log = new ChangeLogImpl(
      this,
      this.logDb,
      cursors,
      (name) => this.tableDb(name),
      index,
      { nodeId, local },
      (cursor) => this.replication?.originOf(cursor),
    )
    this.onError = options.onError ?? ((error) => console.error('@proj/storage:', error))
    this.feed = new ChangeFeed((error) => this.onError(error))
    const dbs = { env, metaDb: this.metaDb, logDb: this.logDb, tombstoneDb: this.tombstoneDb }
    this.commits = new CommitObservers((error) => this.onError(error))
    this.writes = new WriteQueue(
      dbs,
      { clock: this.clock, nodeId, cursors },
      this.feed,
      overlappingSync,
      this.commits,
      (error) => this.onError(error),
      options.replicator?.positionWaitMs,
    )
    this.compactor = new Compactor(dbs, this.clock, cursors, index, {
      retention: options.retention ?? {},
      tableDb: (name) => this.tableDb(name),
      onError: this.onError,
    })
    this.compactor.every(options.compactionIntervalMs ?? DEFAULT_COMPACTION_INTERVAL_MS)
    // the local outbox (also in replicated mode: a node that ran in local mode may have left entries),
    // and which store committed a local write (a wiped node's name may come back)
    this.outbox = options.replicator ? new Outbox(env.openDB({ name: OUTBOX_DB })) : undefined
    let instance = this.metaDb.get('instance') as string | undefined
    if (options.replicator !== undefined && instance === undefined) {
      instance = `${nodeId.toString(36)}.${Date.now().toString(36)}.${randomInt(2 ** 47).toString(36)}`
      this.metaDb.putSync('instance', instance)
    }
    const outbox = this.outbox
    this.replication =
      options.replicator === undefined
        ? undefined
        : new Replication(
            {
              nodeId,
              instance: instance!,
              appendOutbox: outbox && ((txn) => outbox.append(txn)),
              clock: this.clock,
              target: (name, logged) =>
                this.tables.get(name) ?? (this.table(name, { log: logged }) as TableImpl<unknown>),
              enqueue: (group) => this.writes.enqueue(group),
              index,
            },
            options.replicator,
            position,
          )
  }

  get replicatedPosition(): number {
    return this.replication?.position ?? 0
  }

  applyReplicated(data: Uint8Array, position: number): Promise<void> {
    if (this.closing !== undefined) return Promise.reject(new StoreClosedError())
    if (this.replication === undefined)
      return Promise.reject(new StorageError('STORAGE_INVALID_ARGUMENT', 'the store has no replicator'))
    return this.replication.apply(data, position)
  }

  table<V = unknown>(name: string, options?: TableOptions): Table<V> {
    this.assertOpen()
    const existing = this.tables.get(name)
    if (existing !== undefined) {
      if (options?.previous === true && existing.logged) existing.previous = true
      return existing as TableImpl<V>
    }
    if (typeof name !== 'string' || name === '')
      throw new StorageError('STORAGE_INVALID_ARGUMENT', 'a table name must be a non-empty string')
    const logged = options?.log ?? true
    const previous = logged && options?.previous === true
    const referred = logged || this.knownTables[name]?.log === true
    const table = new TableImpl<V>(this, name, this.tableDb(name), logged, previous, referred)
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

  private tableDb(name: string): Db {
    return (
      this.tables.get(name)?.db ??
      // records are read by RecordEncoder (lmdb-js constructs it with its own msgpackr options)
      this.env.openDB({ name: TABLE_PREFIX + name, encoder: { Encoder: RecordEncoder } } as unknown as {
        name: string
      })
    )
  }

  onCommit(listener: CommitListener): () => void {
    return this.commits.add(listener)
  }

  onChange(listener: ChangeListener, filter?: ChangeFilter): () => void {
    return this.feed.add(listener, filter)
  }

  transaction(fn: (txn: WriteTransaction) => void, options?: TransactionOptions): Promise<ChangeEvent[]> {
    if (this.closing !== undefined) return Promise.reject(new StoreClosedError())
    const group = new Group()
    const add = (kind: number, table: Table<any>, id: Key, value: unknown, options?: WriteOptions) => {
      try {
        if (!(table instanceof TableImpl) || table.store !== this)
          throw new StorageError('STORAGE_INVALID_ARGUMENT', 'the table does not belong to this store')
        group.ops.push(makeOp(kind, table, id, value, options))
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
    const replication = this.replication
    if (replication !== undefined && options?.local !== true && replication.replicates(group.ops))
      return replication.submit(group.ops, false) as Promise<ChangeEvent[]>
    return new Promise((resolve, reject) => {
      group.resolve = resolve
      group.reject = reject
      this.writes.enqueue(group)
    })
  }

  /** @internal */
  write(kind: number, table: TableImpl<any>, id: Key, value: unknown, options?: WriteOptions): Promise<any> {
    if (this.closing !== undefined) return Promise.reject(new StoreClosedError())
    let op: Op
    try {
      op = makeOp(kind, table, id, value, options)
    } catch (error) {
      return Promise.reject(error)
    }
    const replication = this.replication
    if (replication?.replicates([op])) return replication.submit([op], true)
    return new Promise((resolve, reject) => {
      op.resolve = resolve
      op.reject = reject
      this.writes.enqueue(op)
    })
  }

  /** @internal `Table.submit`: a write told to `listener` instead of a promise. */
  submit(
    kind: number,
    table: TableImpl<any>,
    id: Key,
    value: unknown,
    options: WriteOptions | undefined,
    listener: WriteListener,
  ): void {
    if (this.closing !== undefined) {
      settleLater(listener, new StoreClosedError(), this.onError)
      return
    }
    let op: Op
    try {
      op = makeOp(kind, table, id, value, options)
    } catch (error) {
      settleLater(listener, error, this.onError)
      return
    }
    const replication = this.replication
    if (replication?.replicates([op])) {
      replication.submit([op], true).then(
        (change) => notify(listener, undefined, change as ChangeEvent | undefined, this.onError),
        (error) => notify(listener, error, undefined, this.onError),
      )
      return
    }
    op.listener = listener
    this.writes.enqueue(op)
  }

  compact(): Promise<number> {
    if (this.closing !== undefined) return Promise.reject(new StoreClosedError())
    return this.compactor.compact()
  }

  /** @internal */
  assertOpen(): void {
    if (this.closed) throw new StoreClosedError()
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.compactor.stop()
      this.replication?.abandon(new StoreClosedError())
      this.writes.abandonAwaiting(new StoreClosedError())
      await this.writes.drained()
      this.closed = true
      await this.env.close()
    })()
    return this.closing
  }
}
