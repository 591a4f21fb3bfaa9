/**
 * The public contract of @proj/storage. Other packages (the resource runtime) are written against
 * these types; change them only together with their users.
 */
import type { CommitStats } from './commit-stats.js'

/** A record's primary key. Arrays are compound keys and sort element by element. */
export type Key = string | number | readonly (string | number)[]

/**
 * A hybrid-logical-clock timestamp: wall-clock microseconds since the epoch in the integer part,
 * strictly increasing within one store even when the wall clock steps back. Comparable across nodes;
 * ties between nodes are broken by `nodeId`.
 */
export type Timestamp = number

export type ChangeType = 'put' | 'patch' | 'delete' | 'message'

/** One committed change, as stored in the change log and delivered by the change feed. */
export interface ChangeEvent<V = unknown> {
  type: ChangeType
  table: string
  id: Key
  /**
   * put: the full new value. patch: the full value after the merge (the merge input is in `patch`).
   * message: the message value (the record is not changed). delete: undefined.
   */
  value?: V
  patch?: Partial<V>
  /** Origin timestamp (last-writer-wins ordering). */
  timestamp: Timestamp
  /** Position of this event in the local change log; strictly increasing in commit order. */
  cursor: number
  /** Node that produced the event. */
  nodeId: number
  /** Who caused the change (username), when known. */
  user?: string
  /** Caller-defined extras persisted with the log entry (e.g. content type, MQTT QoS, user properties). */
  meta?: Record<string, unknown>
  /**
   * Tables opened with `previous: true` only: the record this write replaced, `{ value }`, or null when
   * there was none (an insert, or a delete or message of an absent record). For a message it is the
   * record the message was sent to. Live and in the log alike; undefined for other tables and for
   * log entries written before the table kept it.
   */
  previous?: { value: V } | null
  /** The writer's `WriteOptions.attachment`, on the live event only (undefined in the log and in replicas). */
  attachment?: unknown
}

export interface RecordEntry<V = unknown> {
  id: Key
  value: V
  /** Timestamp of the write that produced this value. */
  version: Timestamp
}

export interface RecordVersion {
  version: Timestamp
  nodeId: number
  /** True when the record is a tombstone (deleted, kept for last-writer-wins until compacted). */
  deleted: boolean
}

export interface WriteOptions {
  user?: string
  meta?: Record<string, unknown>
  /**
   * Apply only when this timestamp is newer than the stored version (or tombstone); used by
   * replication for last-writer-wins, ties broken by the higher nodeId. A write that is not newer
   * rejects with StaleWriteError (STORAGE_STALE). When omitted, the store's clock stamps the write.
   */
  timestamp?: Timestamp
  nodeId?: number
  /**
   * Apply only when the stored version equals this (optimistic concurrency, HTTP If-Match); `0` means
   * "only when the record does not exist". A mismatch rejects with ConflictError (STORAGE_CONFLICT).
   */
  ifVersion?: Timestamp
  /**
   * Anything the writer hands to this write's live change event (`ChangeEvent.attachment`), such as the bytes
   * a record was decoded from: in this process only, never stored, logged or replicated.
   */
  attachment?: unknown
}

export interface RangeOptions {
  start?: Key
  end?: Key
  /** Only string ids starting with this prefix (and array ids whose first elements equal it). */
  prefix?: string
  limit?: number
  offset?: number
  reverse?: boolean
}

export interface TableOptions {
  /** Append this table's changes to the change log and the change feed (default true). */
  log?: boolean
  /**
   * Change events (live and in the log) carry `previous`, the record each write replaced: what a
   * reader needs to tell when a record enters or leaves a query. Costs one read per put and message
   * and the previous value's bytes in each log entry. Only with `log`; the first call for a name decides.
   */
  previous?: boolean
}

export interface Table<V = unknown> {
  readonly name: string
  /** Synchronous read of the latest committed value (undefined when absent or deleted). */
  get(id: Key): V | undefined
  getEntry(id: Key): RecordEntry<V> | undefined
  /** Version and writer of the record or of its tombstone (deleted), for replication and conflict checks. */
  getVersion(id: Key): RecordVersion | undefined
  /** Resolves with the committed event after the commit is durable; rejects with StorageError and changes nothing. */
  put(id: Key, value: V, options?: WriteOptions): Promise<ChangeEvent<V>>
  patch(id: Key, patch: Partial<V>, options?: WriteOptions): Promise<ChangeEvent<V>>
  /** Writes a tombstone; resolves with undefined when there was nothing to delete and no timestamp given. */
  delete(id: Key, options?: WriteOptions): Promise<ChangeEvent<V> | undefined>
  /** Appends a `message` event to the log and feed without touching the record. */
  message(id: Key, value: V, options?: WriteOptions): Promise<ChangeEvent<V>>
  /**
   * `put`, `patch`, `delete` or `message` (`kind`) without a promise: `listener.writeSettled` is called
   * once, when the commit is durable or with the error that refused the write. For callers that make many
   * writes (a broker's durable publishes): no promise, resolvers or closures per write.
   */
  submit(
    kind: WriteKind,
    id: Key,
    value: V | Partial<V> | undefined,
    options: WriteOptions | undefined,
    listener: WriteListener<V>,
  ): void
  entries(range?: RangeOptions): Iterable<RecordEntry<V>>
  count(range?: RangeOptions): number
}

/** What `Table.submit` writes. */
export type WriteKind = 'put' | 'patch' | 'delete' | 'message'

/**
 * Told once when a write made with `Table.submit` settles: after its commit is durable (with its
 * committed event; undefined for a delete that had nothing to delete), or with the StorageError that
 * refused it (nothing changed). Called after the change feed heard the write's batch, like a promise
 * resolution; a listener that throws is reported to `onError`.
 */
export interface WriteListener<V = unknown> {
  writeSettled(error: unknown, change: ChangeEvent<V> | undefined): void
}

/** Writes collected inside `store.transaction()`; all of them commit atomically or none does. */
export interface WriteTransaction {
  put<V>(table: Table<V>, id: Key, value: V, options?: WriteOptions): void
  patch<V>(table: Table<V>, id: Key, patch: Partial<V>, options?: WriteOptions): void
  delete<V>(table: Table<V>, id: Key, options?: WriteOptions): void
  message<V>(table: Table<V>, id: Key, value: V, options?: WriteOptions): void
}

export interface ChangeFilter {
  table?: string
  id?: Key
  prefix?: string
}

export type ChangeListener = (event: ChangeEvent) => void

export interface LogReadOptions {
  /** Exclusive: events with cursor > after. */
  after?: number
  tables?: readonly string[]
  limit?: number
  /**
   * The node that handed out `after` (its `log.issuer`), when not this one: the read then returns what
   * that node had not delivered up to `after`, although a node with `ack: local` numbers its own events
   * ahead of the stream (see @proj/cluster, "Positions under `ack: local`"). Omitted: `after` is this
   * log's own cursor (or a plain stream cursor).
   */
  issuer?: number
}

export interface ChangeLog {
  /**
   * Events in cursor order (with another node's `issuer`: first this node's own events the issuer had
   * not delivered, numbered at or below `after`). Throws LogTruncatedError when `after` is older than
   * what retention kept.
   */
  readSince(options?: LogReadOptions): Iterable<ChangeEvent>
  /**
   * The node id to keep with this log's cursors: this node's when it commits replicated writes ahead of
   * the stream (`Replicator.commitsLocally`), whose cursors are then only exact together with it;
   * undefined when a cursor is a plain position, the same on every node (or there is one node).
   */
  readonly issuer: number | undefined
  /**
   * For the live change event of a transaction another node committed ahead of the stream (`ack:
   * local`), applied here lately: that node and the cursor it gave the event. A reader resuming after
   * that node's cursor leaves out what it had delivered and reached this node only after the read.
   */
  originOf(cursor: number): { node: number; cursor: number } | undefined
  /** Cursor of the newest durable event (0 when empty). */
  readonly lastCursor: number
  /**
   * Cursor of the newest event a read sees now: committed, perhaps not yet synced nor dispatched to the
   * change feed (at least `lastCursor`). A snapshot read together with it holds every change up to it.
   */
  readonly visibleCursor: number
  /** Oldest cursor still kept. */
  readonly firstCursor: number
  /** Drops events older than the retention window (and expired tombstones); returns how many events were removed. */
  compact(): Promise<number>
}

export interface HybridClock {
  readonly nodeId: number
  now(): Timestamp
  /** Advances the clock past a timestamp seen from another node. */
  observe(remote: Timestamp): void
}

export interface OpenStoreOptions {
  path: string
  /** Node id (uint32) carried by this store's events; default: the one stored, else a random one (then stored). */
  nodeId?: number
  /**
   * Change-log retention by age (ms) and by count; compaction runs periodically. Tombstones are
   * dropped after `tombstoneMaxAgeMs` (default `maxAgeMs`, else 7 days).
   */
  retention?: { maxAgeMs?: number; maxEvents?: number; tombstoneMaxAgeMs?: number }
  /** Trade durability for speed: commits are not fsynced (survives process crash, not OS crash). */
  noSync?: boolean
  /** How often compaction runs (ms, default 60 000; 0 = only when `log.compact()` is called). */
  compactionIntervalMs?: number
  /** Upper bound on the number of tables (LMDB named databases), default 250. */
  maxTables?: number
  /** Receives errors thrown by change listeners and by background compaction (default console.error). */
  onError?: (error: unknown) => void
  /** Wall clock in microseconds since the epoch, for tests (default `Date.now() * 1000`). */
  wallClock?: () => number
  /**
   * Replication (a cluster): writes to the tables it replicates are stamped here and handed to it
   * instead of committed; they commit when they come back through `store.applyReplicated()`, in the
   * replicator's total order, on every node alike (the origin's writers resolve then).
   */
  replicator?: Replicator
}

/** One transaction handed to a replicator: opaque bytes, plus what it writes (for routing and reading). */
export interface ReplicatedTransaction {
  /** Unique per transaction (origin node and timestamp): a deduplication id for a retried publish. */
  id: string
  data: Uint8Array
  writes: { table: string; id: Key; type: ChangeType }[]
}

/** What a store needs of a replication transport (see @proj/cluster). */
export interface Replicator {
  /** Which tables replicate; the others stay node-local (written in a replicated transaction: origin only). */
  replicates(table: string): boolean
  /**
   * Puts the transaction in the total order; resolves once it is durably there. A rejection fails the
   * transaction's writers with that error (it was never acknowledged). `{ wait: false }` resolves the
   * writers now, with their stamped events (cursor 0), instead of when the transaction is applied here;
   * conditional writes (`ifVersion`) always wait, since only the apply knows their outcome.
   * `applyWithinMs` bounds that wait: writers whose transaction has not applied here by then fail with
   * `STORAGE_UNAVAILABLE` (outcome unknown: it may still apply later).
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: a replicator that never waits returns Promise<void>
  submit(transaction: ReplicatedTransaction): Promise<void | { wait: boolean; applyWithinMs?: number }>
  /**
   * `ack: local`: a replicated transaction commits on this node at once, with an entry in
   * `store.outbox` written in the same LMDB transaction, and its writers resolve then (`submit` is not
   * called); the replicator publishes the outbox in order and removes what the stream holds. When it
   * comes back from the stream it changes nothing here; other nodes apply it by timestamp (its
   * conditions were checked here only).
   */
  readonly commitsLocally?: boolean
  /** Largest transaction, in bytes, it can carry (checked before a local commit). */
  readonly maxBytes?: number
  /** Told after a local commit added entries to the outbox. */
  outboxed?(): void
  /**
   * `commitsLocally`: how long a local commit waits for the next applied transaction when this node's
   * writes since the last one used up its cursors (1000 per stream position), before it is refused
   * with `STORAGE_UNAVAILABLE` (default 10 000).
   */
  readonly positionWaitMs?: number
  /**
   * Checked before a local commit (`commitsLocally`): an error to fail the write with instead (e.g. the
   * outbox is full while the cluster is unreachable), or undefined to commit it.
   */
  refusal?(): Error | undefined
}

/** A transaction committed on this node that the replicator has not yet put in the cluster's order. */
export interface OutboxEntry extends ReplicatedTransaction {
  /** Its place in the outbox (commit order). */
  key: number
}

/** The `ack: local` outbox (see `Replicator.commitsLocally`). */
export interface ReplicationOutbox {
  /** The oldest `limit` entries (with a key above `after`, when given), in commit order. */
  read(limit: number, after?: number): OutboxEntry[]
  /** Removes entries (the stream has them). */
  remove(keys: readonly number[]): Promise<void>
  readonly size: number
  /** The key of the newest entry ever appended (0: none); entries up to it are what is there now. */
  readonly lastKey: number
}

export interface TransactionOptions {
  /** Commit on this node only, even for replicated tables (e.g. building a node's own index). */
  local?: boolean
}

export interface Store {
  readonly path: string
  readonly clock: HybridClock
  readonly log: ChangeLog
  table<V = unknown>(name: string, options?: TableOptions): Table<V>
  tableNames(): string[]
  /** Runs `fn` to collect writes, commits them atomically and durably, resolves with their events. */
  transaction(fn: (txn: WriteTransaction) => void, options?: TransactionOptions): Promise<ChangeEvent[]>
  /**
   * Applies one replicated transaction at stream position `position` (positions strictly increase; one
   * at or below the last one is a duplicate and ignored). Resolves once it is durable, also when its
   * condition failed (then nothing of it applied, on every node alike); rejects only when the commit
   * itself failed. Its events get cursors `position × 1000 + i`.
   */
  applyReplicated(data: Uint8Array, position: number): Promise<void>
  /** Last stream position applied and durable (0 without a replicator or before the first). */
  readonly replicatedPosition: number
  /** Transactions committed here and not yet replicated (`Replicator.commitsLocally`); undefined without a replicator. */
  readonly outbox: ReplicationOutbox | undefined
  /** Change feed: called after commit, in commit order. Returns an unsubscribe function. */
  onChange(listener: ChangeListener, filter?: ChangeFilter): () => void
  /** Called after each durable commit with its size and timing (monitoring). Returns an unsubscribe function. */
  onCommit(listener: (stats: CommitStats) => void): () => void
  close(): Promise<void>
}
