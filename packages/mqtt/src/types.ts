import type { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import type { AuthMethodFactory } from './auth.js'
import type { ConnectionInfo } from './connection-info.js'
import type { FlowStepHook } from './flow-steps.js'
import type { Runtime, User } from './runtime.js'
import type { BrokerGauges, ClientSnapshot, SessionSnapshot } from './snapshots.js'
import type { BrokerStats } from './stats.js'

export type { ConnectionInfo }

/** pino-style: `logger.warn({ err }, 'message')`; `console` works too. */
export interface Logger {
  debug(...args: unknown[]): void
  info(...args: unknown[]): void
  warn(...args: unknown[]): void
  error(...args: unknown[]): void
}

export interface BrokerOptions {
  /** The resource runtime: the broker's only way to the data (publish, subscribe, users, state). */
  runtime: Runtime
  /** Longest keep-alive a client may use, seconds (v5: Server Keep Alive; v3: CONNACK 0x02 above it). Default 65535. */
  maxKeepAlive?: number
  /** QoS 1/2 PUBLISH packets a v5 client may have unacknowledged (CONNACK Receive Maximum). Default 65535. */
  receiveMaximum?: number
  /** Largest packet accepted, bytes (CONNACK Maximum Packet Size). Default 16 MiB. */
  maxPacketSize?: number
  /** Inbound topic aliases per v5 connection (CONNACK Topic Alias Maximum). Default 10. */
  topicAliasMaximum?: number
  /** Outbound QoS 1/2 messages in flight per session (further capped by the client's Receive Maximum). Default 65535. */
  maxInflight?: number
  /** Outbound QoS 1/2 messages queued behind a full in-flight window per session. Default 100000. */
  maxQueued?: number
  /**
   * MQTT connections served at once, every transport together (0 = unlimited). Default 0. One more gets
   * CONNACK 0x97 Quota exceeded (3.1.1: 0x03 Server unavailable) before its credentials are checked; a
   * client id that is connected already may always replace its connection.
   */
  maxConnections?: number
  /** Concurrent connections per authenticated user (0 = unlimited). Default 0. */
  maxConnectionsPerUser?: number
  /** Refuse anonymous connections even when the runtime allows anonymous access. Default false. */
  requireAuthentication?: boolean
  /**
   * Time a new connection has to send CONNECT (and each AUTH step of enhanced authentication), ms; then
   * the socket is closed. Default 10000.
   */
  connectTimeoutMs?: number
  /**
   * MQTT 5 enhanced authentication methods by Authentication Method name (section 4.12). Default
   * `{ 'SCRAM-SHA-256': createScramSha256() }`; `{}` turns enhanced authentication off (CONNACK 0x8C).
   */
  authenticationMethods?: Record<string, AuthMethodFactory>
  /**
   * CONNACK Response Information for a v5 client that sets Request Response Information: a topic prefix
   * for its response topics. Default `response/{clientId}/`; `false` never sends it.
   */
  responseInformation?: false | ((session: SessionInfo) => string | undefined)
  /**
   * What a 3.1/3.1.1 client gets when the runtime refuses its publish (not permitted, not valid for the
   * table): `'acknowledge'` (default) sends the normal PUBACK/PUBREC and drops the message, `'disconnect'`
   * closes the connection instead (MQTT 3.1.1 section 3.3.5 allows both). MQTT 5 clients always get the
   * acknowledgement with the reason code. Every refusal is logged at warn (rate-limited per client) and
   * emitted as `publish-refused`.
   */
  refusedPublish?: 'acknowledge' | 'disconnect'
  logger?: Logger
  /**
   * Tests only: called after each named step of the QoS flows (`FLOW_STEPS`), so a crash-point test can
   * stop the process right there (see `test/fixtures/broker.mjs --stop-after`). Unset: the flows pay nothing.
   */
  onFlowStep?: FlowStepHook
  /**
   * Several brokers sharing one database (a cluster): a client id is served by one broker at a time.
   * Unset: this broker alone serves its client ids (a single node).
   */
  ownership?: ClientOwnership
}

/** Client-id ownership across brokers (the cluster implements it; the broker only calls it). */
export interface ClientOwnership {
  /** Settles once this broker may restore the sessions and wills it owns (the state is current). */
  readonly ready: Promise<void>
  /** Whether this broker serves `clientId` (restores its offline session, runs its will timers). */
  owns(clientId: string): boolean
  /**
   * Before a CONNECT looks at its session: takes `clientId` from the broker that serves it (which calls
   * its `releaseClient`). True when another broker had it (this broker's copy in memory is stale).
   */
  acquire(clientId: string): Promise<boolean>
  /** The session of `clientId` ended here (no connection, nothing kept): no broker serves it now. */
  forget(clientId: string): void
}

/** The session as the events describe it. */
export interface SessionInfo {
  clientId: string
  user: User | null
}

/** A publish the runtime refused (the `publish-refused` event); nothing of it was applied. */
export interface PublishRefusal {
  clientId: string
  /** The connection's user; undefined for the anonymous user. */
  username: string | undefined
  topic: string
  qos: 0 | 1 | 2
  /** The MQTT 5 reason code of the refusal (a 3.1.1 client does not see it). */
  reasonCode: number
  /** Why, as the runtime said it. */
  reason: string
}

export interface BrokerEvents {
  connection: [stream: Duplex, info: ConnectionInfo]
  connected: [session: SessionInfo, stream: Duplex]
  'auth-failed': [
    details: { clientId: string; username: string | undefined; reason: string; remoteAddress?: string },
    stream: Duplex,
  ]
  disconnected: [session: SessionInfo, stream: Duplex, details: { reason: string }]
  /** Every publish the runtime refused (any QoS, any protocol version): count it, alert on it. */
  'publish-refused': [refusal: PublishRefusal, stream: Duplex]
}

export interface Broker {
  /** `connection`, `connected`, `auth-failed`, `disconnected`, `publish-refused`. */
  readonly events: EventEmitter<BrokerEvents>
  /** Serves one client over any duplex stream (TCP, TLS, WebSocket). Bound: `net.createServer(broker.handle)`. */
  readonly handle: (stream: Duplex, info?: ConnectionInfo) => void
  /** Stops accepting, keeps pending wills and sessions persisted for the next start, closes every connection. */
  close(): Promise<void>
  /** Connections currently open (any state). */
  readonly connectionCount: number
  /** Counters since the broker was created (plain numbers, read by monitoring). */
  readonly stats: BrokerStats
  /** Connected clients (past CONNACK) with their sessions, by client id. */
  listClients(): ClientSnapshot[]
  /** Every session kept: connected ones and durable ones whose client is away. */
  listSessions(): SessionSnapshot[]
  /** Closes a connected client (v5 DISCONNECT 0x98); false when none with that id is connected. */
  disconnectClient(clientId: string): boolean
  /** Connection, session, subscription and queue totals in one pass, for monitoring. */
  gauges(): BrokerGauges
  /**
   * Another broker of the cluster took `clientId`: its connection here closes (v5 DISCONNECT 0x8E, will
   * rules as for a takeover), its session is forgotten here without being erased; resolves once its
   * session writes are committed.
   */
  releaseClient(clientId: string): Promise<void>
  /**
   * This broker took over `clientId` from a broker of the cluster that died (last heard at
   * `offlineSince`, ms since the epoch): its durable session's expiry and its wills run here from now.
   */
  adoptClient(clientId: string, offlineSince: number): void
  /**
   * While `reason` is set (a cluster node that cannot serve current data) the broker serves nobody: each
   * open connection closes (v5 DISCONNECT 0x9C Use another server, will rules as for any disconnect by the
   * server; 3.1.1 is closed) and each CONNECT is refused (CONNACK 0x88 Server unavailable; 3.1.1 return
   * code 3), until it is called with `undefined`. (0x88 is not a DISCONNECT reason code in MQTT 5.)
   */
  unavailable(reason: string | undefined): void
}
