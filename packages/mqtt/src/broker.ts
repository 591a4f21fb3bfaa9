import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import type { AuthMethodFactory } from './auth.js'
import { Connection } from './connection.js'
import type { ConnectionHost } from './connection-host.js'
import { ConnectionLimits } from './connection-limits.js'
import type { FlowStepHook } from './flow-steps.js'
import { brokerGauges, disconnectClient, listClients, listSessions } from './introspection.js'
import { KeepAliveTimers } from './keep-alive.js'
import { OutboundEncoder } from './outbound-encoder.js'
import { RateLimitedLog } from './rate-limited-log.js'
import type { Runtime, StateStore } from './runtime.js'
import { createScramSha256 } from './scram.js'
import { SessionRegistry } from './session-registry.js'
import type { BrokerGauges, ClientSnapshot, SessionSnapshot } from './snapshots.js'
import { BrokerStats } from './stats.js'
import { StreamListeners } from './stream-listeners.js'
import type { Broker, BrokerEvents, BrokerOptions, ConnectionInfo, Logger, SessionInfo } from './types.js'
import { followUserChanges } from './user-revocation.js'
import { WillKeeper } from './wills.js'

const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} }

/**
 * Creates an MQTT 3.1.1 / 5 broker on the resource runtime.
 *
 * @example
 * ```ts
 * import net from 'node:net'
 * import { createBroker } from '@proj/mqtt'
 * const broker = createBroker({ runtime })
 * const server = net.createServer((socket) =>
 *   broker.handle(socket, { transport: 'tcp', remoteAddress: socket.remoteAddress }))
 * server.listen(1883, '127.0.0.1')
 * broker.events.on('connected', ({ clientId }) => console.log('connected', clientId))
 * ```
 */
export function createBroker(options: BrokerOptions): Broker {
  return new BrokerCore(options)
}

/**
 * The broker: its options, shared services (state stores, background writes, the outbound encoder) and the
 * connections it serves; sessions live in the registry, delayed wills in the will keeper. Connections and
 * sessions see it through the `ConnectionHost` / `SessionHost` interfaces. Not exported from the package.
 */
class BrokerCore implements Broker, ConnectionHost {
  readonly events = new EventEmitter<BrokerEvents>()
  readonly stats = new BrokerStats()
  readonly runtime: Runtime
  readonly logger: Logger
  /** Warnings for faults clients cause (refused subscriptions, protocol errors), rate-limited per kind. */
  readonly faultLog: RateLimitedLog
  readonly maxKeepAlive: number
  readonly receiveMaximum: number
  readonly maxPacketSize: number
  readonly topicAliasMaximum: number
  readonly maxInflight: number
  readonly maxQueued: number
  readonly maxConnectionsPerUser: number
  readonly limits: ConnectionLimits
  readonly requireAuthentication: boolean
  readonly connectTimeoutMs: number
  readonly authenticationMethods: Readonly<Record<string, AuthMethodFactory>>
  readonly responseInformation: false | ((session: SessionInfo) => string | undefined)
  readonly refusedPublish: 'acknowledge' | 'disconnect'
  readonly onFlowStep: FlowStepHook | undefined

  readonly encoder: OutboundEncoder
  readonly wills: WillKeeper
  /** One timer for every connection's keep-alive. */
  readonly keepAlives = new KeepAliveTimers()
  /** The stream listeners every connection shares. */
  readonly streams = new StreamListeners()
  readonly sessions: SessionRegistry
  readonly connections = new Set<Connection>()
  private readonly stores = new Map<string, StateStore<any>>()
  private readonly pending = new Set<Promise<unknown>>()
  private connectionSeq = 0
  /** Unique per broker, also across a cluster's nodes: will keys are [clientId, connection id]. */
  readonly bootId = Date.now().toString(36) + randomBytes(3).toString('hex')
  closing = false
  unavailableReason: string | undefined = undefined

  constructor(options: BrokerOptions) {
    this.runtime = options.runtime
    this.logger = options.logger ?? silentLogger
    this.faultLog = new RateLimitedLog(this.logger)
    this.maxKeepAlive = clamp(options.maxKeepAlive ?? 65535, 0, 65535)
    this.receiveMaximum = clamp(options.receiveMaximum ?? 65535, 1, 65535)
    this.maxPacketSize = clamp(options.maxPacketSize ?? 16 * 1024 * 1024, 64, 268435460)
    this.topicAliasMaximum = clamp(options.topicAliasMaximum ?? 10, 0, 65535)
    this.maxInflight = clamp(options.maxInflight ?? 65535, 1, 65535)
    this.maxQueued = Math.max(0, options.maxQueued ?? 100_000)
    this.maxConnectionsPerUser = Math.max(0, options.maxConnectionsPerUser ?? 0)
    this.limits = new ConnectionLimits(Math.max(0, options.maxConnections ?? 0), this.maxConnectionsPerUser)
    this.requireAuthentication = options.requireAuthentication ?? false
    this.connectTimeoutMs = Math.max(1, options.connectTimeoutMs ?? 10_000)
    this.authenticationMethods = options.authenticationMethods ?? { 'SCRAM-SHA-256': createScramSha256() }
    this.responseInformation = options.responseInformation ?? ((s) => `response/${s.clientId}/`)
    this.refusedPublish = options.refusedPublish === 'disconnect' ? 'disconnect' : 'acknowledge'
    this.onFlowStep = options.onFlowStep
    this.encoder = new OutboundEncoder(this.runtime, this.logger)
    const ownership = options.ownership
    this.wills = new WillKeeper(this, ownership)
    this.sessions = new SessionRegistry(this, this.wills, ownership)
    this.handle = this.handle.bind(this)
    const restore = () => {
      const now = Date.now()
      if (this.sessions.restore(now)) this.wills.restore(now)
    }
    // A cluster restores once the state is current, and only the sessions and wills this node serves.
    if (ownership === undefined) restore()
    else
      ownership.ready.then(
        () => {
          if (!this.closing) restore()
        },
        (err) => this.logger.error({ err }, 'mqtt: sessions not restored'),
      )
    const sessions = this.sessions
    const wills = this.wills
    const broker = this
    this.stopFollowingUsers = followUserChanges({
      runtime: this.runtime,
      logger: this.logger,
      get closing() {
        return broker.closing
      },
      connections: this.connections,
      sessions,
      discardWillsOf: (username) => wills.discardWillsOf(username),
      endSession: (session) => sessions.end(session),
    })
  }

  private readonly stopFollowingUsers: () => void

  get connectionCount(): number {
    return this.connections.size
  }

  listClients(): ClientSnapshot[] {
    return listClients(this)
  }

  listSessions(): SessionSnapshot[] {
    return listSessions(this)
  }

  disconnectClient(clientId: string): boolean {
    return disconnectClient(this, clientId)
  }

  gauges(): BrokerGauges {
    return brokerGauges(this)
  }

  adoptClient(clientId: string, offlineSince: number): void {
    if (this.closing) return
    const expiryMs = this.sessions.adopt(clientId, offlineSince)
    if (expiryMs !== undefined) this.wills.adopt(clientId, offlineSince, expiryMs)
  }

  async releaseClient(clientId: string): Promise<void> {
    this.sessions.release(clientId)
    while (this.pending.size > 0) await Promise.allSettled([...this.pending])
  }

  unavailable(reason: string | undefined): void {
    if (reason === this.unavailableReason) return
    this.unavailableReason = reason
    if (reason === undefined) return
    for (const conn of [...this.connections]) conn.unavailable(reason)
  }

  handle(stream: Duplex, info: ConnectionInfo = { transport: 'tcp' }): void {
    if (this.closing) {
      stream.destroy()
      return
    }
    let conn: Connection
    try {
      conn = new Connection(this, stream, info, ++this.connectionSeq)
    } catch (err) {
      this.logger.error({ err }, 'mqtt: cannot serve a new connection')
      stream.destroy()
      return
    }
    this.connections.add(conn)
    this.emit('connection', stream, info)
  }

  /**
   * Emits a broker event; a listener that throws is logged, and neither the connection that
   * triggered the event nor the process pays for it.
   */
  emit<K extends keyof BrokerEvents>(name: K, ...args: BrokerEvents[K]): void {
    try {
      ;(this.events.emit as (name: K, ...args: BrokerEvents[K]) => boolean)(name, ...args)
    } catch (err) {
      this.logger.error({ err, event: name }, `mqtt: a '${name}' event listener failed`)
    }
  }

  async close(): Promise<void> {
    if (this.closing) return
    this.closing = true
    this.stopFollowingUsers()
    for (const conn of [...this.connections]) conn.shutdown()
    this.sessions.close()
    this.wills.close()
    this.keepAlives.close()
    while (this.pending.size > 0) await Promise.allSettled([...this.pending])
  }

  // -------------------------------------------------------------------------------------------
  // Helpers for connections and sessions

  state<V = unknown>(name: string): StateStore<V> {
    let store = this.stores.get(name)
    if (store === undefined) {
      store = this.runtime.state<V>(name)
      this.stores.set(name, store)
    }
    return store
  }

  /** Keeps a background write so close() can wait for it; returns the same promise. */
  track<T>(p: Promise<T>): Promise<T> {
    this.pending.add(p)
    const done = () => this.pending.delete(p)
    p.then(done, (err) => {
      done()
      this.logger.error({ err }, 'mqtt: background write failed')
    })
    return p
  }

  addUserConnection(username: string): boolean {
    return this.limits.takeUser(username)
  }

  removeUserConnection(username: string): void {
    this.limits.giveUser(username)
  }

  connectionClosed(conn: object): void {
    this.connections.delete(conn as Connection)
  }
}

function clamp(n: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, Math.floor(n)))
}
