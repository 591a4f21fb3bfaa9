import type { NatsConnection } from '@nats-io/transport-node'
import type { ResourceRuntime, RuntimeEvent } from '@proj/resource'
import type { ClusterLog } from './options.js'
import { FrameWriter, frameOrigin, readFrames } from './relay-frame.js'
import type { SharedGroups } from './shares.js'
import { recordSubject } from './subjects.js'

/** Topics no table claims travel under this table name. */
const TOPICS = '__topics'
/** A batch is sent once it holds this many bytes (well under NATS's 1 MB default `max_payload`). */
const BATCH_BYTES = 64 * 1024
/** Subjects kept per table and topic (computing one cost ~10 µs a message); the cache starts over past it. */
const SUBJECTS = 10_000

/**
 * QoS 0 non-retained messages between nodes, over core NATS (`<prefix>.q.<table>.<id…>`, not stored):
 * the runtime's `relay` option publishes each transient event dispatched here, and every other node
 * delivers it to its subscribers with `runtime.dispatchRelayed()`. Lost when a node or its NATS link is
 * lost, like QoS 0 anywhere.
 *
 * Consecutive events on one subject within one event-loop turn (the publishes of the socket reads
 * handled in one poll phase; sent from `setImmediate`) travel as one
 * NATS message (`relay-frame.ts`), so the per-message costs of NATS (protocol line, parsing, a callback
 * on every node) are paid per batch. Order is kept: a batch is sent when the subject changes, so the
 * events go out in the order they were relayed. The relay uses its own NATS connection without echo, so
 * a node does not receive (and decode, to drop) its own messages.
 */
export class Relay {
  #runtime: ResourceRuntime | undefined
  #unsubscribe: (() => void) | undefined
  #batch: FrameWriter | undefined
  #subject = ''
  #scheduled = false
  readonly #subjects = new Map<string, Map<string, string>>()

  constructor(
    private readonly nats: NatsConnection,
    private readonly prefix: string,
    private readonly nodeId: number,
    private readonly log: ClusterLog,
    private readonly shared: SharedGroups,
  ) {}

  /** The runtime's `relay` option. */
  readonly relay = (event: RuntimeEvent): void => {
    if (this.nats.isClosed()) return
    const subject = this.#subjectOf(event.path || TOPICS, event.topic)
    if (this.#batch !== undefined && (subject !== this.#subject || this.#batch.length >= BATCH_BYTES))
      this.flush()
    const { nodes } = this.shared.assignment(event)
    try {
      this.#batch ??= new FrameWriter(this.nodeId)
      this.#subject = subject
      this.#batch.write(event, nodes.size > 0 ? [...nodes] : null)
    } catch (error) {
      // a value msgpack cannot encode: that message alone is not relayed
      this.log.warn({ err: error, topic: event.topic }, 'cluster: a QoS 0 message was not relayed')
      return
    }
    if (!this.#scheduled) {
      this.#scheduled = true
      setImmediate(this.#flushLater)
    }
  }

  readonly #flushLater = (): void => {
    this.#scheduled = false
    this.flush()
  }

  /** Sends the pending batch now. */
  flush(): void {
    const batch = this.#batch
    if (batch === undefined) return
    this.#batch = undefined
    if (batch.count === 0) return
    if (this.nats.isClosed()) return
    try {
      this.nats.publish(this.#subject, batch.bytes())
    } catch (error) {
      this.log.warn(
        { err: error, subject: this.#subject, messages: batch.count },
        'cluster: QoS 0 messages were not relayed',
      )
    }
  }

  #subjectOf(table: string, topic: string): string {
    let topics = this.#subjects.get(table)
    if (topics === undefined) {
      if (this.#subjects.size >= SUBJECTS) this.#subjects.clear()
      topics = new Map()
      this.#subjects.set(table, topics)
    }
    let subject = topics.get(topic)
    if (subject === undefined) {
      if (topics.size >= SUBJECTS) topics.clear()
      subject = recordSubject(this.prefix, 'q', table, topic)
      topics.set(topic, subject)
    }
    return subject
  }

  /** Starts delivering other nodes' transient events to `runtime`. */
  attach(runtime: ResourceRuntime): void {
    this.#runtime = runtime
    const sub = this.nats.subscribe(`${this.prefix}.q.>`, {
      callback: (error, msg) => {
        if (error) return
        try {
          // no echo on this connection; a node's own batch is still dropped should one come back
          if (frameOrigin(msg.data) === this.nodeId) return
          readFrames(msg.data, (event, shared) => {
            this.shared.assigned(event, shared)
            this.#runtime?.dispatchRelayed(event)
          })
        } catch (err) {
          this.log.warn({ err }, 'cluster: a relayed message could not be delivered')
        }
      },
    })
    this.#unsubscribe = () => sub.unsubscribe()
  }

  close(): void {
    this.flush()
    this.#unsubscribe?.()
    this.#runtime = undefined
  }
}
