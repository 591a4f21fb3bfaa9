/**
 * What a Session needs of the world, as interfaces: the connection it delivers to (its outlet) and the
 * broker services it uses. Session depends on these and on nothing that depends on it, so the broker,
 * the session registry and the connection import sessions without an import cycle.
 */
import type { ConnectionInfo } from './connection-info.js'
import type { FaultSink } from './fault.js'
import type { FlowStep, FlowStepHook } from './flow-steps.js'
import type { EncodeTarget, OutboundEncoder } from './outbound-encoder.js'
import type { RequestContext, Runtime, StateStore } from './runtime.js'
import type { BrokerStats, DoorStats } from './stats.js'
import type { Logger } from './types.js'

/** The connection a session is attached to, as the session (and the registry) sees it. */
export interface SessionOutlet extends EncodeTarget, FaultSink {
  readonly ctx: RequestContext
  /** Format for subscribers without a per-subscription `accept`. */
  readonly accept: string
  /** Whether the client asked for `accept` (v5 subscribers then get a content type). */
  readonly acceptExplicit: boolean
  /** The client's Receive Maximum: outbound QoS 1/2 messages it takes unacknowledged. */
  readonly clientReceiveMaximum: number
  /** A subscriber that does not read: QoS 0 messages are dropped meanwhile. */
  readonly congested: boolean
  /** The broker's counters of this connection's door. */
  readonly counters: DoorStats
  /** Past CONNACK and not closed. */
  readonly connected: boolean
  readonly info: ConnectionInfo
  /** ms since the epoch when the stream was handed over. */
  readonly openedAt: number
  /** Protocol level: 3, 4 or 5. */
  readonly version: number
  /** Queues a packet for the socket. */
  write(packet: Buffer): void
  /** Reports `step` once the packet just written leaves for the socket (crash-point tests). */
  noteSent(step: FlowStep): void
  /** Another connection, on this node or another, takes the session over: v5 DISCONNECT 0x8E, close. */
  takeOver(): void
  /** v5 DISCONNECT 0x98 Administrative action, then close. */
  disconnectAdministratively(reason: string): void
}

/** The broker services a session uses. */
export interface SessionHost {
  readonly runtime: Pick<Runtime, 'mayReceive' | 'cursorIssuer'>
  readonly logger: Logger
  readonly stats: BrokerStats
  readonly maxInflight: number
  readonly maxQueued: number
  readonly onFlowStep: FlowStepHook | undefined
  readonly encoder: OutboundEncoder
  state<V = unknown>(name: string): StateStore<V>
  /** Keeps a background write so close() can wait for it (and logs its failure); returns the same promise. */
  track<T>(p: Promise<T>): Promise<T>
}
