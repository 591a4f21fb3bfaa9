import { asBinary } from 'lmdb'
import type { ChangeFeed } from './change-feed.js'
import type { CommitObservers } from './commit-stats.js'
import type { Databases } from './databases.js'
import { StorageError } from './errors.js'
import { inlineLogValue } from './log-values.js'
import { Scratch, type StoredRecord } from './record-format.js'
import type { ChangeEvent, WriteListener } from './types.js'
import { DELETE, Group, Op, type Overlay, type Stamp } from './write-plan.js'

/** Meta key of the last applied stream position. */
export const REPLICATED_KEY = 'replicated'
const BINARY_FIELD = '\x10binary-data\x02'
const APPEND = { append: true }
const noop = () => {}

/** Stands in a batch for a group that left it to wait for the next stream position. */
const LEFT = new Group()
LEFT.resolve = noop
LEFT.reject = noop

/** A completed batch's writes and events: none (see Batch.release). */
const RELEASED: never[] = []

/** The writes applied in one LMDB transaction (one sync). */
class Batch {
  items: (Op | Group)[] = []
  /** How many items it held (monitoring; `items` is let go once they are told). */
  size = 0
  /** Its transaction callback ran (it counts as in flight). */
  applied = false
  events: ChangeEvent[] = []
  lastCursor = 0
  readonly run: () => void
  constructor(queue: WriteQueue) {
    this.run = () => queue.applyBatch(this)
  }

  /**
   * Lets go of the writes once they are told. A batch that reached the old generation (it lived through
   * young-generation GCs while it committed) is garbage once completed, but a young-generation GC does
   * not know that: it keeps everything an old object references alive until the next full GC, and what
   * it keeps is copied and promoted. Holding on, S3 (the MQTT benchmark's QoS 1 round trip) spent about
   * a fifth of its time in scavenges of 5 to 30 ms that copied 40 to 70 % of what had been allocated.
   */
  release(): void {
    this.items = RELEASED
    this.events = RELEASED
  }
}

/**
 * Collects writes and commits them in batches: everything queued until LMDB runs a batch's transaction
 * goes into it, one transaction and one sync for all. Completes batches strictly in commit order: the
 * feed hears a batch's events, then its writers' promises resolve.
 */
export class WriteQueue {
  /** Reused for every `asBinary` write inside a transaction (lmdb-js reads it synchronously). */
  private readonly binary = asBinary(Buffer.alloc(0)) as unknown as Record<string, Buffer>
  /** A single write's log entry and record, built and written before the next write is planned. */
  private readonly scratch = { log: new Scratch(), record: new Scratch() }
  private queue: (Op | Group)[] = []
  private scheduled: Batch | undefined = undefined
  private tail: Promise<void> = Promise.resolve()
  /**
   * Batches written in their transaction and not yet completed (durable and resolved). Two or more: the
   * next batch was written while the one before it still committed or synced.
   */
  inFlight = 0
  /**
   * `ack: local` commits waiting for the next applied stream position, in commit order: their cursors
   * would have reached the slots of the next position's events (see Cursors.fits).
   */
  private awaiting: Group[] = []
  private awaitingTimer: NodeJS.Timeout | undefined = undefined

  constructor(
    private readonly dbs: Databases,
    private readonly stamp: Stamp,
    private readonly feed: ChangeFeed,
    /** Resolve writes only once their transaction is flushed to disk (`overlappingSync`). */
    private readonly waitForFlush: boolean,
    /** Told each batch's size and timing (monitoring). */
    private readonly commits: CommitObservers,
    /** A write listener that threw. */
    private readonly onError: (error: unknown) => void,
    /** How long an `ack: local` commit waits for a stream position before it is refused as unavailable. */
    private readonly positionWaitMs = 10_000,
  ) {}

  enqueue(item: Op | Group): void {
    this.queue.push(item)
    if (this.scheduled === undefined) this.schedule()
  }

  /** Settles once every batch scheduled so far has completed or failed. */
  drained(): Promise<void> {
    return this.tail
  }

  private schedule(): void {
    const env = this.dbs.env
    const batch = new Batch(this)
    this.scheduled = batch
    // A child transaction: lmdb-js commits a plain async transaction's writes even when its callback
    // throws, which would keep half a batch (a record without its log entry) that callers see rejected.
    const committed = env.childTransaction(batch.run) as Promise<unknown>
    // `env.flushed` is the flush of the last queued transaction when it is read: read it now, while that
    // is this batch's, so the batch waits for its own fsync and not for a later batch's too.
    const durable = this.waitForFlush ? flushedAfter(committed, ownFlush(env)) : committed
    durable.catch(noop)
    this.commits.time(() => batch.size, committed, durable, this.waitForFlush)
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
    this.inFlight++
    batch.applied = true
    batch.items = items
    batch.size = items.length
    const { stamp } = this
    let wrote = false
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!
      if (item instanceof Op) {
        let planned: boolean
        try {
          planned = item.plan(stamp, undefined, this.scratch)
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
      if (item.position !== undefined) {
        // a replicated transaction: its events are cursors position × 1000 + i on every node, and the
        // position is stored in the same LMDB transaction, whatever the outcome (so it applies once)
        stamp.cursors.enterPosition(item.position)
        this.dbs.metaDb.putSync(REPLICATED_KEY, item.position)
        wrote = true
        // the local commits that waited for slots take those of this position, right after its events
        if (this.awaiting.length > 0) items.splice(i + 1, 0, ...this.takeAwaiting())
      } else if (item.provisional && (this.awaiting.length > 0 || !stamp.cursors.fits(loggedOps(item)))) {
        this.await(item)
        items[i] = LEFT
        continue
      }
      const cursorBefore = stamp.cursors.issued
      try {
        const overlay: Overlay = new Map<string, StoredRecord | null>()
        for (const op of item.ops) op.plan(stamp, overlay)
      } catch (error) {
        // nothing of the group was written yet: planning precedes every write
        item.failed = error
        stamp.cursors.rewind(cursorBefore)
        continue
      }
      for (const op of item.ops) {
        if (op.result === undefined) continue
        this.apply(op, batch)
        item.events.push(op.result)
        wrote = true
      }
      item.alsoWrite?.()
    }
    if (wrote) this.dbs.metaDb.putSync('state', [stamp.clock.last, stamp.cursors.issued])
  }

  /** A local commit waits for the next applied position; refused as unavailable when none comes in time. */
  private await(group: Group): void {
    this.awaiting.push(group)
    if (this.awaitingTimer !== undefined) return
    this.awaitingTimer = setTimeout(() => {
      this.awaitingTimer = undefined
      this.abandonAwaiting(
        new StorageError(
          'STORAGE_UNAVAILABLE',
          `no replicated transaction applied within ${this.positionWaitMs} ms, and this node's writes since the last one used up its change-log cursors up to the next`,
        ),
      )
    }, this.positionWaitMs)
    this.awaitingTimer.unref?.()
  }

  private takeAwaiting(): Group[] {
    const groups = this.awaiting
    this.awaiting = []
    clearTimeout(this.awaitingTimer)
    this.awaitingTimer = undefined
    return groups
  }

  /** Refuses the local commits waiting for a stream position (their time is up, or the store closes). */
  abandonAwaiting(error: unknown): void {
    for (const group of this.takeAwaiting()) group.reject!(error)
  }

  private apply(op: Op, batch: Batch): void {
    const { binary } = this
    const { logDb, tombstoneDb } = this.dbs
    const db = op.table.db
    if (op.inlineCursor !== undefined) {
      // the replaced record held this entry's value: the entry gets it before the record goes (it is
      // gone when retention dropped the entry)
      const entry = logDb.getBinary(op.inlineCursor) as Buffer | undefined
      const inline = entry === undefined ? undefined : inlineLogValue(entry, op.inlineValue!)
      if (inline !== undefined) {
        binary[BINARY_FIELD] = inline
        logDb.putSync(op.inlineCursor, binary)
      }
    }
    if (op.record !== undefined) {
      binary[BINARY_FIELD] = op.record
      db.putSync(op.id, binary)
    } else if (op.remove) db.removeSync(op.id)
    if (op.log !== undefined) {
      const event = op.result!
      binary[BINARY_FIELD] = op.log
      // Cursors only grow, so the log is appended (MDB_APPEND): full pages instead of the half-full ones
      // that splitting in the middle leaves behind. A refused append (never expected) is a plain put.
      if (!(logDb.putSync(event.cursor, binary, APPEND) as unknown as boolean))
        logDb.putSync(event.cursor, binary)
      if (op.kind === DELETE) tombstoneDb.putSync([event.timestamp, event.cursor], [op.table.name, op.id])
      batch.events.push(event)
      batch.lastCursor = event.cursor
    }
  }

  private complete(batch: Batch): void {
    if (batch.applied) this.inFlight--
    this.stamp.cursors.publish(batch.lastCursor)
    if (this.feed.size > 0) for (const event of batch.events) this.feed.dispatch(event)
    for (const item of batch.items) {
      if (item instanceof Op && item.listener !== undefined)
        notify(item.listener, item.failed, item.failed === undefined ? item.result : undefined, this.onError)
      else if (item.failed !== undefined) item.reject!(item.failed)
      else if (item instanceof Op) item.resolve!(item.result)
      else item.resolve!(item.events)
    }
    batch.release()
  }

  private fail(batch: Batch, error: unknown): void {
    // a batch whose callback never ran (the transaction failed before it) was never counted
    if (batch.applied) this.inFlight--
    for (const item of batch.items) {
      const reason =
        item.failed ??
        new StorageError('STORAGE_WRITE_FAILED', `commit failed: ${(error as Error)?.message}`, {
          cause: error,
        })
      if (item instanceof Op && item.listener !== undefined)
        notify(item.listener, reason, undefined, this.onError)
      else item.reject!(reason)
    }
    batch.release()
  }
}

function loggedOps(group: Group): number {
  let count = 0
  for (const op of group.ops) if (op.table.logged) count++
  return count
}

/** Tells a write listener its outcome; what it throws goes to `onError`, not to the batch's other writes. */
export function notify(
  listener: WriteListener,
  error: unknown,
  change: ChangeEvent | undefined,
  onError: (error: unknown) => void,
): void {
  try {
    listener.writeSettled(error, change)
  } catch (thrown) {
    onError(thrown)
  }
}

/** A write refused before it was queued: told after the caller's turn, as a rejected promise would be. */
export function settleLater(
  listener: WriteListener,
  error: unknown,
  onError: (error: unknown) => void,
): void {
  queueMicrotask(() => notify(listener, error, undefined, onError))
}

function ownFlush(env: Databases['env']): Promise<unknown> {
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
