/**
 * What a connection needs of the broker: its options and shared services, as an interface, so the
 * connection modules import no broker (the broker imports them).
 */
import type { EventEmitter } from 'node:events'
import type { AuthMethodFactory } from './auth.js'
import type { ConnectionLimits } from './connection-limits.js'
import type { KeepAliveTimers } from './keep-alive.js'
import type { RateLimitedLog } from './rate-limited-log.js'
import type { Runtime } from './runtime.js'
import type { SessionHost } from './session-outlet.js'
import type { SessionRegistry } from './session-registry.js'
import type { StreamListeners } from './stream-listeners.js'
import type { BrokerEvents, SessionInfo } from './types.js'
import type { WillKeeper } from './wills.js'

export interface ConnectionHost extends SessionHost {
  readonly runtime: Runtime
  readonly events: EventEmitter<BrokerEvents>
  /** Warnings for faults clients cause (refused subscriptions, protocol errors), rate-limited per kind. */
  readonly faultLog: RateLimitedLog
  readonly maxKeepAlive: number
  readonly receiveMaximum: number
  readonly maxPacketSize: number
  readonly topicAliasMaximum: number
  readonly limits: ConnectionLimits
  readonly requireAuthentication: boolean
  readonly connectTimeoutMs: number
  readonly authenticationMethods: Readonly<Record<string, AuthMethodFactory>>
  readonly responseInformation: false | ((session: SessionInfo) => string | undefined)
  readonly refusedPublish: 'acknowledge' | 'disconnect'
  readonly closing: boolean
  /** Why the broker serves nobody now (see `Broker.unavailable`); undefined while it serves. */
  readonly unavailableReason: string | undefined
  readonly sessions: SessionRegistry
  readonly wills: WillKeeper
  /** Unique per broker start (and across a cluster's nodes): a connection's id is `${bootId}.${seq}`. */
  readonly bootId: string
  /** The shared keep-alive timer. */
  readonly keepAlives: KeepAliveTimers
  /** The stream listeners every connection shares. */
  readonly streams: StreamListeners
  /** Emits a broker event; a listener that throws is logged, never thrown into the connection. */
  emit<K extends keyof BrokerEvents>(name: K, ...args: BrokerEvents[K]): void
  addUserConnection(username: string): boolean
  removeUserConnection(username: string): void
  /** The connection closed: the broker forgets it. */
  connectionClosed(conn: object): void
}
