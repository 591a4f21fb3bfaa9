import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream'
import type { ClusterLog } from './options.js'
import { sleep } from './retry.js'

/** A consumer that leaves a message known to be in the stream undelivered this long is helped out. */
const STALL_MS = 2000

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
 * messages one by one from the stream leader (`STREAM.MSG.GET`, which needs no meta leader): writes keep
 * applying once the stream has a leader again, within the few seconds of its own election.
 */
export class StreamReader {
  #stop: (() => void) | undefined
  /** Whether a consumer is delivering (the direct reads pause). */
  #consumerUp = false

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly stream: string,
    private readonly log: ClusterLog,
    private readonly stopped: () => boolean,
  ) {}

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
   * undelivered for over two seconds (a stall nothing reported): the next message by sequence from the
   * stream leader, again and again.
   */
  async #readDirect(next: () => number, last: () => number, deliver: Deliver): Promise<void> {
    let quiet = 0
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
      const seq = at
      let message: Awaited<ReturnType<JetStreamManager['streams']['getMessage']>>
      try {
        message = await this.jsm.streams.getMessage(this.stream, { seq })
      } catch {
        message = null // no stream leader yet, or no answer: ask again
      }
      if (this.stopped()) break
      if (message === null) {
        // nothing (yet) at that sequence: ask again shortly, less often while it stays quiet
        await sleep(Math.min(100 * ++quiet, 500))
        continue
      }
      quiet = 0
      await deliver(message.seq, message.data)
    }
  }
}
