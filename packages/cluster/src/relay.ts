import { performance } from 'node:perf_hooks'
import type { NatsConnection } from '@nats-io/transport-node'
import type { ResourceRuntime, RuntimeEvent } from '@proj/resource'
import type { ClusterLog } from './options.js'
import { FrameWriter, frameOrigin, readFrames } from './relay-frame.js'
import { RelayGaps, RelayHistory, serveReplays } from './relay-replay.js'
import type { SharedGroups } from './shares.js'
import { subjectToken } from './subjects.js'

/** A batch is sent once it holds this many bytes (well under NATS's 1 MB default `max_payload`). */
const BATCH_BYTES = 64 * 1024
/** Default of `holdMs`. */
const RELAY_HOLD_MS = 1

/**
 * QoS 0 non-retained messages between nodes, over core NATS (`<prefix>.q.<origin node>`, not stored):
 * the runtime's `relay` option publishes each transient event dispatched here, and every other node
 * delivers it to its subscribers with `runtime.dispatchRelayed()`. Each node numbers its batches and keeps
 * the last seconds of them, so a node that missed some (a NATS server died with them, or its connection
 * was moving to another server) gets them again, in order (`relay-replay.ts`): lost only with their
 * origin node, or when a node's NATS link is down longer than that window.
 *
 * Events travel in batches (`relay-frame.ts`), so the per-message costs of NATS are paid per batch: on
 * this node a socket write, on each NATS server a read, a route hop and a write per node, on every other
 * node a read, a parse and a callback, and there a socket write per subscriber for the whole batch. A
 * batch goes out at the end of the event-loop turn, or, when the last one went out less than `holdMs`
 * ago, with the first message after `holdMs` has passed (or, when none comes, from a timer half a hold
 * later): a message after a quiet spell goes at once, and under a steady stream each waits at most about
 * `holdMs`. At 5,000 messages/s one NATS message per MQTT message woke every process on the way (three
 * NATS servers, two nodes, their subscribers) once per message: on two cores the nine processes queued
 * for a core longer than they ran (the cluster README's "Where a cross-node message goes"). One subject per origin node
 * (each frame names its topic), so messages on many topics share a batch and keep their order. The
 * relay uses its own NATS connection without echo, so a node does not receive its own messages.
 */
export class Relay {
  #runtime: ResourceRuntime | undefined
  #unsubscribe: (() => void) | undefined
  readonly #history = new RelayHistory()
  #gaps: RelayGaps | undefined
  #batch: FrameWriter | undefined
  /** When the last batch went out (performance.now(), ms). */
  #sentAt = Number.NEGATIVE_INFINITY
  #timer: NodeJS.Timeout | undefined
  #immediate: NodeJS.Immediate | undefined
  readonly #subject: string

  constructor(
    private readonly nats: NatsConnection,
    private readonly prefix: string,
    nodeName: string,
    private readonly nodeId: number,
    private readonly log: ClusterLog,
    private readonly shared: SharedGroups,
    private readonly holdMs = RELAY_HOLD_MS,
  ) {
    this.#subject = `${prefix}.q.${subjectToken(nodeName)}`
  }

  /** The runtime's `relay` option. */
  readonly relay = (event: RuntimeEvent): void => {
    if (this.nats.isClosed()) return
    const { nodes } = this.shared.assignment(event)
    try {
      this.#batch ??= new FrameWriter(this.nodeId)
      this.#batch.write(event, nodes.size > 0 ? [...nodes] : null)
    } catch (error) {
      // a value msgpack cannot encode: that message alone is not relayed
      this.log.warn({ err: error, topic: event.topic }, 'cluster: a QoS 0 message was not relayed')
      return
    }
    if (this.#batch.length >= BATCH_BYTES) this.flush()
    else if (this.#immediate === undefined) {
      const wait = this.#sentAt + this.holdMs - performance.now()
      if (wait <= 0) this.#immediate = setImmediate(this.#flushLater)
      // half a hold late: under a steady stream the first message after the hold sends the batch in
      // the turn that read it, so the timer (a wake-up of its own) fires only after a burst's last message
      else this.#timer ??= setTimeout(this.#flushLater, wait + this.holdMs / 2)
    }
  }

  readonly #flushLater = (): void => {
    this.flush()
  }

  /** Sends the pending batch now. */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    if (this.#immediate !== undefined) clearImmediate(this.#immediate)
    this.#timer = undefined
    this.#immediate = undefined
    const batch = this.#batch
    if (batch === undefined) return
    this.#batch = undefined
    if (batch.count === 0) return
    if (this.nats.isClosed()) return
    this.#sentAt = performance.now()
    try {
      this.nats.publish(this.#subject, this.#history.stamp(batch.bytes()))
    } catch (error) {
      this.log.warn(
        { err: error, subject: this.#subject, messages: batch.count },
        'cluster: QoS 0 messages were not relayed',
      )
    }
  }

  /** Starts delivering other nodes' transient events to `runtime`. */
  attach(runtime: ResourceRuntime): void {
    this.#runtime = runtime
    const gaps = new RelayGaps(this.nats, this.prefix, this.log, (batch) =>
      readFrames(batch, (event, shared) => {
        this.shared.assigned(event, shared)
        this.#runtime?.dispatchRelayed(event)
      }),
    )
    this.#gaps = gaps
    const sub = this.nats.subscribe(`${this.prefix}.q.>`, {
      callback: (error, msg) => {
        if (error) return
        try {
          // no echo on this connection; a node's own batch is still dropped should one come back
          if (frameOrigin(msg.data) === this.nodeId) return
          gaps.receive(msg.data)
        } catch (err) {
          this.log.warn({ err }, 'cluster: a relayed message could not be delivered')
        }
      },
    })
    const stopReplays = serveReplays(this.nats, this.prefix, this.nodeId, this.#history, gaps)
    this.#unsubscribe = () => {
      sub.unsubscribe()
      stopReplays()
    }
  }

  close(): void {
    this.flush()
    this.#gaps?.close()
    this.#unsubscribe?.()
    this.#runtime = undefined
  }
}
