/**
 * What an operator asks a running broker: which clients are connected, which sessions it keeps, how
 * full their queues are, and "disconnect that one". Read-only snapshots built on demand from the
 * broker's connections and sessions, so the message path pays nothing for them.
 */
import type { Session } from './session.js'
import type { SessionOutlet } from './session-outlet.js'
import type { SessionRegistry } from './session-registry.js'
import { NEVER_EXPIRES } from './session-store.js'
import type { BrokerGauges, ClientSnapshot, SessionSnapshot, SubscriptionInfo } from './snapshots.js'

/** What introspection reads of the broker. */
interface Observed {
  readonly sessions: SessionRegistry
  readonly connections: { readonly size: number }
}

function subscriptions(session: Session): SubscriptionInfo[] {
  const out: SubscriptionInfo[] = []
  for (const s of session.subscriptions.values()) {
    out.push({ filter: s.filter, qos: s.qos, shared: s.shared, noLocal: s.nl, retainAsPublished: s.rap })
  }
  return out
}

function sessionSnapshot(session: Session): SessionSnapshot {
  return {
    clientId: session.clientId,
    username: session.owner,
    protocolVersion: session.protocolVersion,
    connected: isConnected(session.connection),
    durable: session.durable,
    expiryInterval: session.expiry >= NEVER_EXPIRES ? null : session.expiry,
    disconnectedAt: session.disconnectedAt,
    subscriptions: subscriptions(session),
    inflight: session.inflight.size,
    queued: session.queued,
  }
}

function isConnected(conn: SessionOutlet | null): conn is SessionOutlet {
  return conn?.connected === true
}

/** Every connected client (past CONNACK), ordered by client id. */
export function listClients(broker: Observed): ClientSnapshot[] {
  const out: ClientSnapshot[] = []
  for (const session of broker.sessions.values()) {
    const conn = session.connection
    if (!isConnected(conn)) continue
    out.push({
      ...sessionSnapshot(session),
      transport: conn.info.transport,
      remoteAddress: conn.info.remoteAddress,
      remotePort: conn.info.remotePort,
      connectedAt: conn.openedAt,
    })
  }
  return out.sort((a, b) => (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0))
}

/** Every session the broker keeps (connected, and durable ones whose client is away), ordered by client id. */
export function listSessions(broker: Observed): SessionSnapshot[] {
  const out: SessionSnapshot[] = []
  for (const session of broker.sessions.values()) if (!session.destroyed) out.push(sessionSnapshot(session))
  return out.sort((a, b) => (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0))
}

/**
 * Closes a connected client's connection (MQTT 5: DISCONNECT 0x98 Administrative action). Its session
 * and will follow the usual rules: a durable session stays, a will is published. False when no client
 * with that id is connected.
 */
export function disconnectClient(broker: Observed, clientId: string): boolean {
  const conn = broker.sessions.get(clientId)?.connection ?? null
  if (!isConnected(conn)) return false
  conn.disconnectAdministratively('disconnected by an administrator')
  return true
}

export function brokerGauges(broker: Observed): BrokerGauges {
  const byVersion = () => ({ 3: 0, 4: 0, 5: 0 })
  const gauges: BrokerGauges = {
    connections: { tcp: byVersion(), tls: byVersion(), ws: byVersion(), wss: byVersion() },
    sockets: broker.connections.size,
    sessions: 0,
    durableSessions: 0,
    subscriptions: 0,
    inflight: 0,
    queued: 0,
    maxQueued: 0,
  }
  for (const session of broker.sessions.values()) {
    if (session.destroyed) continue
    gauges.sessions++
    if (session.durable) gauges.durableSessions++
    gauges.subscriptions += session.subscriptions.size
    gauges.inflight += session.inflight.size
    const queued = session.queued
    gauges.queued += queued
    if (queued > gauges.maxQueued) gauges.maxQueued = queued
    const conn = session.connection
    if (isConnected(conn)) {
      const door = gauges.connections[conn.info.transport] ?? gauges.connections.tcp
      const version = conn.version as 3 | 4 | 5
      if (version in door) door[version]++
    }
  }
  return gauges
}
