import {
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstreamManager,
  type StoredMsg,
} from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import type { ClusterLog } from './options.js'
import { sleep } from './retry.js'

/** A consumer that leaves a message known to be in the stream undelivered this long is helped out. */
const STALL_MS = 2000
/** Direct reads asked for at once (each a `STREAM.MSG.GET` of one sequence; NATS 2.9 has no batch get). */
const DIRECT_WINDOW = 64
/**
 * How long a direct read waits for its answer. No stream leader, no answer: a read asked just before the
 * election ended would otherwise hold the catch-up for the client's default 5 s.
 */
const DIRECT_TIMEOUT_MS = 1000

/**
 * Takes the stream's messages in order; false when `seq` is not the next one (the source starts over).
 * A promise only when the source is to wait (the deliverer is behind): a promise per message cost the
 * consumer's callback an allocation and a microtask each, at every node for every QoS 1 message.
 */
export type Deliver = (seq: number, data: Uint8Array) => boolean | Promise<boolean>

/**
 * Reads the stream in order from a start sequence and hands every message to `deliver`, exactly in
 * sequence (a message below the next one is a duplicate and skipped by `deliver`).
 *
 * Normally through an ordered consumer (pushes batches, one round trip per 512 messages). That consumer
 * is an R1 consumer on one NATS server: when that server goes, it is lost (noticed after two missed
 * heartbeats) and a new one cannot be created while the JetStream meta group elects a leader, which on
 * a loaded machine took over 40 s. So while there is no working consumer, the reader also fetches
 * messages from the stream leader (`STREAM.MSG.GET`, which needs no meta leader), up to 64 asked at once
 * and delivered in order: writes keep applying once the stream has a leader again, within the few
 * seconds of its own election.
 */
export class StreamReader {
  #stop: (() => void) | undefined
  /** Whether a consumer is delivering (the direct reads pause). */
  #consumerUp = false
  /** The direct reads' API client: its own, with a short request timeout. */
  readonly #direct: Promise<JetStreamManager>

  constructor(
    private readonly js: JetStreamClient,
    nats: NatsConnection,
    private readonly stream: string,
    private readonly log: ClusterLog,
    private readonly stopped: () => boolean,
  ) {
    this.#direct = jetstreamManager(nats, { timeout: DIRECT_TIMEOUT_MS, checkAPI: false })
  }

  /** Stops the current consumer (the loop ends once `stopped()` is true). */
  stop(): void {
    this.#stop?.()
  }

  /**
   * Runs until `stopped()`; `next()` is the next sequence to read (the deliverer's position), `last()`
   * the highest sequence known to be in the stream (this node's own acknowledged writes).
   */
  async run(next: () => number, last: () => number, deliver: Deliver): Promise<void> {
    // not awaited at the end: an unanswered read would hold up closing; it ends on its own once stopped
    this.#readDirect(next, last, deliver).catch((error) => {
      if (!this.stopped()) this.log.warn({ err: error }, 'cluster: reading the stream directly stopped')
    })
    let first = true
    while (!this.stopped()) {
      if (!first) await sleep(250)
      first = false
      let messages: Awaited<ReturnType<Awaited<ReturnType<JetStreamClient['consumers']['get']>>['consume']>>
      /** Set once this consumer is done with: `error` undefined after a gap, else why it failed. */
      let ended: { error: unknown } | undefined
      let stopMessages = () => {}
      const end = (error: unknown) => {
        if (ended !== undefined) return
        ended = { error }
        stopMessages()
      }
      try {
        const consumer = await this.js.consumers.get(this.stream, {
          deliver_policy: DeliverPolicy.StartSequence,
          opt_start_seq: next(),
        })
        // short pulls and heartbeats: a lost consumer is noticed within seconds, not the 30 s default.
        // A callback, not async iteration: no promise and microtask hop per message (deliver does its
        // work synchronously, in order, and answers at once whether the message was the next one)
        messages = await consumer.consume({
          max_messages: 512,
          expires: 4000,
          idle_heartbeat: 1000,
          callback: (m) => {
            if (ended !== undefined) return
            let next: boolean | Promise<boolean>
            try {
              next = deliver(m.seq, m.data)
            } catch (error) {
              end(error)
              return
            }
            // a gap: this consumer started behind what another source delivered; start over
            if (next === false) end(undefined)
            else if (next !== true) next.then((ok) => ok || end(undefined), end)
          },
        })
      } catch (error) {
        if (this.stopped()) break
        this.log.warn(
          { err: error },
          'cluster: creating the stream consumer failed; reading directly meanwhile',
        )
        continue
      }
      stopMessages = () => void messages.stop()
      this.#stop = stopMessages
      if (this.stopped() || ended !== undefined) messages.stop()
      this.#consumerUp = true
      void (async () => {
        for await (const status of messages.status()) {
          const trouble =
            (status.type === 'heartbeats_missed' && status.count >= 2) ||
            status.type === 'consumer_deleted' ||
            status.type === 'consumer_not_found' ||
            status.type === 'stream_not_found'
          if (trouble) {
            this.log.warn(
              { status: status.type },
              'cluster: the stream consumer was lost; starting a new one',
            )
            this.#consumerUp = false
            messages.stop()
            break
          }
        }
      })().catch(() => {})
      try {
        const closed = await messages.closed()
        const error = ended?.error ?? closed
        if (error) throw error
      } catch (error) {
        if (this.stopped()) break
        this.log.warn({ err: error }, 'cluster: consuming the stream failed; retrying')
      } finally {
        this.#consumerUp = false
      }
    }
  }

  /**
   * While no consumer delivers, or while a consumer that is up leaves a message known to be in the stream
   * undelivered for over two seconds (a stall nothing reported): the next messages by sequence from the
   * stream leader, a window at a time.
   */
  async #readDirect(next: () => number, last: () => number, deliver: Deliver): Promise<void> {
    let quiet = 0
    /** How many to ask for beyond what is known to be there (doubled while windows come back full). */
    let span = 1
    let watched = { next: 0, since: 0 }
    let helping = false
    while (!this.stopped()) {
      const at = next()
      if (helping && at > last()) helping = false
      if (this.#consumerUp && !helping) {
        if (at > last() || at !== watched.next) {
          watched = { next: at, since: Date.now() }
          await sleep(250)
          continue
        }
        if (Date.now() - watched.since < STALL_MS) {
          await sleep(250)
          continue
        }
        this.log.warn(
          { next: at, last: last() },
          'cluster: the stream consumer stalled; reading directly and starting a new one',
        )
        helping = true
        // a consumer that stalls once stalls again (seen on a replica still catching up after its NATS
        // server restarted): a new one starts at the next sequence
        this.#stop?.()
      }
      // asked at once, delivered in order up to the first gap: how many depends on what is known to be
      // there (this node's own writes) and on whether the last window came back full (others' writes)
      const count = Math.max(span, Math.min(DIRECT_WINDOW, last() - at + 1))
      const got = await this.#readWindow(at, count, deliver)
      if (this.stopped()) break
      if (got === 0) {
        span = 1
        // nothing (yet) at that sequence: ask again shortly, less often while it stays quiet
        await sleep(Math.min(100 * ++quiet, 500))
        continue
      }
      quiet = 0
      span = got === count ? Math.min(count * 2, DIRECT_WINDOW) : 1
    }
  }

  /**
   * Asks for `count` messages from `from` on at once (one round trip for all: a catch-up after a
   * consumer loss read one per round trip, and acknowledged writes waited seconds for it) and delivers
   * them in order; resolves with how many were delivered before the first one missing or refused.
   */
  async #readWindow(from: number, count: number, deliver: Deliver): Promise<number> {
    const direct = await this.#direct
    const reads: Promise<StoredMsg | null>[] = []
    for (let i = 0; i < count; i++)
      reads.push(
        // no stream leader yet, or no answer: null, asked again
        direct.streams.getMessage(this.stream, { seq: from + i }).catch(() => null),
      )
    let delivered = 0
    for (const read of reads) {
      const message = await read
      if (message === null || this.stopped()) break
      if (!(await deliver(message.seq, message.data))) break
      delivered++
    }
    return delivered
  }
}
