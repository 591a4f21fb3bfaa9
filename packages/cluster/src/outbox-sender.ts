import type { JetStreamClient } from '@nats-io/jetstream'
import type { OutboxEntry, ReplicationOutbox } from '@proj/storage'
import type { ClusterLog } from './options.js'
import { sleep } from './retry.js'
import { recordSubject } from './subjects.js'

/** Entries published at once (pipelined on the one connection, so they reach the stream in order). */
const WINDOW = 64

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

  constructor(
    private readonly js: JetStreamClient,
    private readonly prefix: string,
    private readonly log: ClusterLog,
    /** Told the stream sequence of each acknowledged entry. */
    private readonly sent: (seq: number) => void,
  ) {}

  start(outbox: ReplicationOutbox): void {
    this.#running ??= this.#run(outbox).catch((error) => {
      if (!this.#closed) this.log.error({ err: error }, 'cluster: the outbox sender stopped')
    })
  }

  /** Something was added to the outbox. */
  kick(): void {
    this.#pending = true
    this.#wake?.()
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#wake?.()
    await this.#running
  }

  async #run(outbox: ReplicationOutbox): Promise<void> {
    let wait = 50
    while (!this.#closed) {
      this.#pending = false
      const entries = outbox.read(WINDOW)
      if (entries.length === 0) {
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
      if (done > 0) await outbox.remove(entries.slice(0, done).map((e) => e.key))
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
    const ack = await this.js.publish(recordSubject(this.prefix, kind, first.table, first.id), entry.data, {
      msgID: entry.id,
      timeout: 2000,
    })
    return ack.seq
  }
}

function isTooLarge(error: unknown): boolean {
  return /max.?payload/i.test(String((error as Error)?.message ?? ''))
}
