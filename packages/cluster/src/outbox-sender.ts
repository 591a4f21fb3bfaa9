import type { OutboxEntry, ReplicationOutbox } from '@proj/storage'
import { ClusterUnavailableError } from './errors.js'
import type { ClusterLog } from './options.js'
import { sleep } from './retry.js'
import type { StreamPublisher } from './stream-publisher.js'
import { recordSubject } from './subjects.js'

/** Entries published at once (pipelined on the one connection, so they reach the stream in order). */
const WINDOW = 64
/** What a write refused by a full outbox tells its client (HTTP Retry-After). */
const FULL_RETRY_AFTER_MS = 5000
/** How long one entry waits for JetStream's acknowledgement before the window is sent again. */
const SEND_TIMEOUT_MS = 2000

/**
 * `ack: local`: publishes the store's outbox to the stream in commit order, removing each window once
 * JetStream acknowledged all of it; retried (same `Nats-Msg-Id`, so the stream keeps each once) while
 * NATS or a quorum is unreachable. Runs from the node's start (a restarted node sends what it had not)
 * until `close()`.
 */
export class OutboxSender {
  #wake: (() => void) | undefined
  #pending = false
  #closed = false
  #running: Promise<void> | undefined
  /** When the outbox last became non-empty with nothing sent since (for the log). */
  #stuckSince = 0
  #outbox: ReplicationOutbox | undefined
  /** Entries in the outbox (counted here: LMDB counts by iterating); exact whenever a read finds few. */
  #count = 0
  /** Whether writes are being refused (the outbox is full); logged when it changes. */
  #full = false
  /** Who waits for the outbox to be sent up to a key (an ownership hand-over). */
  #drains: { upTo: number; resolve: (drained: boolean) => void }[] = []
  /** The highest key JetStream acknowledged (its removal from the outbox may still be committing). */
  #acked = 0
  /** Removals of acknowledged entries, in order, off the sending path (each is an LMDB commit). */
  #removing: Promise<void> = Promise.resolve()

  constructor(
    /** The node's publisher: one reply subscription answered by a callback (no request machinery). */
    private readonly publisher: StreamPublisher,
    private readonly prefix: string,
    private readonly log: ClusterLog,
    /** Told the stream sequence of each acknowledged entry. */
    private readonly sent: (seq: number) => void,
    /** Most entries the outbox holds; a local commit beyond is refused (0: no bound). */
    private readonly limit = 0,
  ) {}

  start(outbox: ReplicationOutbox): void {
    if (this.#running !== undefined) return
    this.#outbox = outbox
    this.#count = outbox.size
    this.#running = this.#run(outbox).catch((error) => {
      if (!this.#closed) this.log.error({ err: error }, 'cluster: the outbox sender stopped')
    })
  }

  /** Something was added to the outbox. */
  kick(): void {
    this.#count++
    this.#pending = true
    this.#wake?.()
  }

  /**
   * Before a local commit: the error to refuse it with when the outbox holds `limit` entries (NATS or a
   * quorum unreachable for that long); refused like a write that found no quorum (HTTP 503, MQTT 0x80).
   */
  refusal(): ClusterUnavailableError | undefined {
    if (this.limit <= 0 || this.#count < this.limit) {
      if (this.#full) {
        this.#full = false
        this.log.info({ entries: this.#count, limit: this.limit }, 'cluster: the outbox has room again')
      }
      return undefined
    }
    if (!this.#full) {
      this.#full = true
      this.log.warn(
        { entries: this.#count, limit: this.limit },
        'cluster: the outbox is full (NATS or a JetStream quorum unreachable); refusing writes until it drains',
      )
    }
    return new ClusterUnavailableError(
      `the cluster is unreachable and this node's outbox holds ${this.#count} unsent writes (cluster.outboxLimit)`,
      { retryAfterMs: FULL_RETRY_AFTER_MS },
    )
  }

  /**
   * Resolves true once every entry the outbox holds now is in the stream (at once when it is empty);
   * false when that takes longer than `timeoutMs` or the sender closes.
   */
  drained(timeoutMs: number): Promise<boolean> {
    const outbox = this.#outbox
    if (outbox === undefined || this.#sentUpTo(outbox, outbox.lastKey)) return Promise.resolve(true)
    const upTo = outbox.lastKey
    return new Promise((resolve) => {
      const waiter = {
        upTo,
        resolve: (drained: boolean) => {
          clearTimeout(timer)
          const i = this.#drains.indexOf(waiter)
          if (i >= 0) this.#drains.splice(i, 1)
          resolve(drained)
        },
      }
      const timer = setTimeout(() => waiter.resolve(false), timeoutMs)
      timer.unref?.()
      this.#drains.push(waiter)
    })
  }

  #sentUpTo(outbox: ReplicationOutbox, key: number): boolean {
    if (this.#acked >= key) return true
    const oldest = outbox.read(1, this.#acked)[0]
    return oldest === undefined || oldest.key > key
  }

  #wakeDrains(outbox: ReplicationOutbox): void {
    if (this.#drains.length === 0) return
    const oldest = outbox.read(1, this.#acked)[0]?.key ?? Number.POSITIVE_INFINITY
    for (const w of [...this.#drains]) if (oldest > w.upTo) w.resolve(true)
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#wake?.()
    for (const w of [...this.#drains]) w.resolve(false)
    await this.#running
    await this.#removing
  }

  async #run(outbox: ReplicationOutbox): Promise<void> {
    let wait = 50
    while (!this.#closed) {
      this.#pending = false
      // the next window goes out while the last one's removal commits: read past what was acknowledged
      const entries = outbox.read(WINDOW, this.#acked)
      if (entries.length < WINDOW) this.#count = entries.length
      if (entries.length === 0) {
        this.#wakeDrains(outbox)
        if (this.#pending) continue
        await new Promise<void>((resolve) => {
          this.#wake = resolve
        })
        this.#wake = undefined
        continue
      }
      const results = await Promise.allSettled(entries.map((e) => this.#send(e)))
      if (this.#closed) return
      // the acknowledged prefix is in the stream; from the first failure on, all is sent again (the
      // stream keeps a resent one once, by its id)
      let done = results.findIndex((r) => r.status === 'rejected')
      if (done === -1) done = entries.length
      for (let i = 0; i < done; i++) this.sent((results[i] as PromiseFulfilledResult<number>).value)
      const failure = done < entries.length ? (results[done] as PromiseRejectedResult).reason : undefined
      if (failure !== undefined && isTooLarge(failure)) {
        // storage checks the size before committing; a server with a smaller limit keeps it here
        const entry = entries[done]!
        this.log.error(
          { err: failure, txn: entry.id, bytes: entry.data.byteLength },
          'cluster: an outbox entry is larger than NATS accepts; it stays on this node only',
        )
        done++
      }
      if (done > 0) {
        this.#acked = entries[done - 1]!.key
        this.#count = Math.max(0, this.#count - done)
        const keys = entries.slice(0, done).map((e) => e.key)
        // a crash before the removal commits resends them: the stream keeps each once, by its id
        this.#removing = this.#removing
          .then(() => outbox.remove(keys))
          .catch((error) => this.log.warn({ err: error }, 'cluster: removing sent outbox entries failed'))
        this.#wakeDrains(outbox)
      }
      if (failure === undefined) {
        if (this.#stuckSince !== 0)
          this.log.info(
            { ms: Date.now() - this.#stuckSince, left: outbox.size },
            'cluster: publishing the outbox again',
          )
        this.#stuckSince = 0
        wait = 50
        continue
      }
      if (this.#stuckSince === 0) {
        this.#stuckSince = Date.now()
        this.log.warn(
          { err: failure, waiting: outbox.size },
          'cluster: cannot publish the outbox (acknowledged local writes wait); retrying',
        )
      }
      if (done === 0) {
        await sleep(wait)
        wait = Math.min(wait * 2, 1000)
      }
    }
  }

  async #send(entry: OutboxEntry): Promise<number> {
    const first = entry.writes[0]!
    const kind = entry.writes.some((w) => w.type === 'message') ? 'm' : 'r'
    const subject = recordSubject(this.prefix, kind, first.table, first.id)
    return (await this.publisher.publish(subject, entry.data, entry.id, SEND_TIMEOUT_MS)).seq
  }
}

function isTooLarge(error: unknown): boolean {
  return /max.?payload/i.test(String((error as Error)?.message ?? ''))
}
