import type { NatsConnection } from '@nats-io/transport-node'
import { type ResourceRuntime, RuntimeEvent } from '@proj/resource'
import { Packr } from 'msgpackr'
import type { ClusterLog } from './options.js'
import type { SharedGroups } from './shares.js'
import { recordSubject } from './subjects.js'

const packr = new Packr({ useRecords: false, mapsAsObjects: true })

/** Topics no table claims travel under this table name. */
const TOPICS = '__topics'

type Wire = [
  node: number,
  type: RuntimeEvent['type'],
  topic: string,
  path: string,
  id: RuntimeEvent['id'],
  timestamp: number,
  user: string | null,
  meta: RuntimeEvent['meta'] | null,
  origin: string | null,
  payload: Uint8Array | null,
  contentType: string | null,
  value: unknown,
  /** Shared-subscription groups: the node that delivers it, per group (the origin's choice). */
  shared: [key: string, node: string][] | null,
]

/**
 * QoS 0 non-retained messages between nodes, over core NATS (`<prefix>.q.<table>.<id…>`, not stored):
 * the runtime's `relay` option publishes each transient event dispatched here, and every other node
 * delivers it to its subscribers with `runtime.dispatchRelayed()`. Lost when a node or its NATS link is
 * lost, like QoS 0 anywhere.
 */
export class Relay {
  #runtime: ResourceRuntime | undefined
  #unsubscribe: (() => void) | undefined

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
    const wire: Wire = [
      this.nodeId,
      event.type,
      event.topic,
      event.path,
      event.id,
      event.timestamp,
      event.user ?? null,
      event.meta ?? null,
      event.origin ?? null,
      event.payload ?? null,
      event.contentType ?? null,
      event.payload === undefined ? event.value : null,
      null,
    ]
    const { nodes } = this.shared.assignment(event)
    if (nodes.size > 0) wire[12] = [...nodes]
    try {
      this.nats.publish(recordSubject(this.prefix, 'q', event.path || TOPICS, event.topic), packr.pack(wire))
    } catch (error) {
      this.log.warn({ err: error, topic: event.topic }, 'cluster: a QoS 0 message was not relayed')
    }
  }

  /** Starts delivering other nodes' transient events to `runtime`. */
  attach(runtime: ResourceRuntime): void {
    this.#runtime = runtime
    const sub = this.nats.subscribe(`${this.prefix}.q.>`, {
      callback: (error, msg) => {
        if (error) return
        try {
          const w = packr.unpack(msg.data) as Wire
          if (w[0] === this.nodeId) return
          const event = new RuntimeEvent(
            w[1],
            w[2],
            w[3],
            w[4],
            w[5],
            0,
            w[6] ?? undefined,
            false,
            w[7] ?? undefined,
          )
          if (w[8] !== null) event.origin = w[8]
          if (w[9] !== null) event.setPayload(w[9], w[10] ?? undefined)
          else event.value = w[11]
          this.shared.assigned(event, w[12] ?? null)
          this.#runtime?.dispatchRelayed(event)
        } catch (err) {
          this.log.warn({ err }, 'cluster: a relayed message could not be delivered')
        }
      },
    })
    this.#unsubscribe = () => sub.unsubscribe()
  }

  close(): void {
    this.#unsubscribe?.()
    this.#runtime = undefined
  }
}
