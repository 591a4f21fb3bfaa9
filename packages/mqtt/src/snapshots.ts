/** What the introspection functions return: plain data, so types.ts can name it without importing the broker. */
import type { Door } from './stats.js'

export interface SubscriptionInfo {
  filter: string
  qos: 0 | 1 | 2
  /** `$share/{group}/{filter}`. */
  shared: boolean
  noLocal: boolean
  retainAsPublished: boolean
}

/** A session as an operator sees it; the connection fields are set while a client is connected. */
export interface SessionSnapshot {
  clientId: string
  /** Null for anonymous clients. */
  username: string | null
  /** 3 (MQTT 3.1), 4 (3.1.1) or 5. */
  protocolVersion: number
  connected: boolean
  /** Kept after the connection closes (v3 clean session 0, v5 Session Expiry Interval > 0). */
  durable: boolean
  /** Session Expiry Interval in seconds; null = never expires. */
  expiryInterval: number | null
  /** ms since the epoch; null while connected. */
  disconnectedAt: number | null
  subscriptions: SubscriptionInfo[]
  /** Outbound QoS 1/2 messages sent and not yet acknowledged. */
  inflight: number
  /** Outbound messages waiting behind a full in-flight window. */
  queued: number
}

/** A connected client: its session plus where it came from. */
export interface ClientSnapshot extends SessionSnapshot {
  transport: Door
  remoteAddress: string | undefined
  remotePort: number | undefined
  /** ms since the epoch when its connection opened. */
  connectedAt: number
}

/** Aggregates for monitoring, computed in one pass without building per-client objects. */
export interface BrokerGauges {
  /** Connected clients (past CONNACK) by door and protocol version: `connections.tcp[5]`. */
  connections: Record<Door, Record<3 | 4 | 5, number>>
  /** Open network connections in any state (also those still before CONNECT). */
  sockets: number
  sessions: number
  durableSessions: number
  subscriptions: number
  inflight: number
  queued: number
  /** The longest outbound queue of any session. */
  maxQueued: number
}
