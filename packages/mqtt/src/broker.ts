import { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import type { AuthMethodFactory } from './auth.js'
import { Connection } from './connection.js'
import { ConnectionLimits } from './connection-limits.js'
import type { FlowStepHook } from './flow-steps.js'
import { brokerGauges, disconnectClient, listClients, listSessions } from './introspection.js'
import { encodePublish, encodePublishProperties, type PublishProperties } from './publish-codec.js'
import { RateLimitedLog } from './rate-limited-log.js'
import type { Key, ResourceEvent, Runtime, StateStore } from './runtime.js'
import { createScramSha256 } from './scram.js'
import { type Orphan, Session, type SessionSubscription } from './session.js'
import {
  NEVER_EXPIRES,
  SESSIONS_STORE,
  type StoredSession,
  type StoredWill,
  WILLS_STORE,
} from './session-store.js'
import type { BrokerGauges, ClientSnapshot, SessionSnapshot } from './snapshots.js'
import { BrokerStats } from './stats.js'
import type { Broker, BrokerEvents, BrokerOptions, ConnectionInfo, Logger, SessionInfo } from './types.js'
import { followUserChanges } from './user-revocation.js'

const EMPTY = Buffer.alloc(0)
const JSON_TYPE = 'application/json'
const MAX_TIMER_MS = 2 ** 31 - 1

const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} }

/** Encodings of one event shared by every subscriber that receives the same bytes. */
interface EventCache {
  topic: Buffer | undefined
  format: string | undefined
  payload: Uint8Array | undefined
  payloads: Map<string, Uint8Array> | undefined
  packets: Map<string, Buffer> | undefined
  props: Map<string, Buffer> | undefined
  packetKey: string | undefined
  packet: Buffer | undefined
}

interface PendingWill {
  key: Key
  will: StoredWill
  timer: NodeJS.Timeout | null
}

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

/** The broker; connections and sessions call back into it. Not exported from the package. */
export class BrokerCore implements Broker {
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

  readonly sessions = new Map<string, Session>()
  readonly connections = new Set<Connection>()
  private readonly stores = new Map<string, StateStore<any>>()
  private readonly pending = new Set<Promise<unknown>>()
  private readonly wills = new Map<string, PendingWill[]>()
  private readonly erasing = new Map<string, number>()
  private lastEvent: ResourceEvent | undefined
  private lastCache: EventCache | undefined
  private connectionSeq = 0
  private readonly bootId = Date.now().toString(36)
  closing = false

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
    this.handle = this.handle.bind(this)
    this.restore()
    this.stopFollowingUsers = followUserChanges(this)
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

  handle(stream: Duplex, info: ConnectionInfo = { transport: 'tcp' }): void {
    if (this.closing) {
      stream.destroy()
      return
    }
    let conn: Connection
    try {
      conn = new Connection(this, stream, info, `${this.bootId}.${++this.connectionSeq}`)
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
    for (const session of this.sessions.values()) {
      if (session.expiryTimer) clearTimeout(session.expiryTimer)
      session.expiryTimer = null
    }
    for (const list of this.wills.values()) for (const w of list) if (w.timer) clearTimeout(w.timer)
    this.wills.clear()
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

  // -------------------------------------------------------------------------------------------
  // Outbound encoding, shared across subscribers

  /**
   * The runtime hands one event to every matching subscriber in a row, so a one-slot cache (the last
   * event seen) shares encodings across a fan-out without a WeakMap lookup per delivery.
   */
  private eventCache(event: ResourceEvent): EventCache {
    if (event === this.lastEvent) return this.lastCache!
    const c: EventCache = {
      topic: undefined,
      format: undefined,
      payload: undefined,
      payloads: undefined,
      packets: undefined,
      props: undefined,
      packetKey: undefined,
      packet: undefined,
    }
    this.lastEvent = event
    this.lastCache = c
    return c
  }

  topicBytes(event: ResourceEvent): Buffer {
    const c = this.eventCache(event)
    return (c.topic ??= Buffer.from(event.topic, 'utf8'))
  }

  /** The payload for a subscriber's format: deletes are empty, raw bytes pass through, values are encoded once. */
  payload(event: ResourceEvent, format: string): Uint8Array {
    if (event.type === 'delete') return EMPTY
    const value = event.value
    if (value instanceof Uint8Array) return value
    if (value === undefined) return EMPTY
    const c = this.eventCache(event)
    if (c.format === format) return c.payload!
    const hit = c.payloads?.get(format)
    if (hit !== undefined) return hit
    let bytes: Uint8Array
    try {
      bytes = this.runtime.encode(event, format)
    } catch (err) {
      if (format === JSON_TYPE) throw err
      this.logger.warn({ err }, `mqtt: cannot encode for ${format}, sending JSON`)
      bytes = this.runtime.encode(event, JSON_TYPE)
    }
    if (c.format === undefined) {
      c.format = format
      c.payload = bytes
    } else {
      ;(c.payloads ??= new Map()).set(format, bytes)
    }
    return bytes
  }

  /**
   * Seconds left of an event's Message Expiry Interval (MQTT 5 section 3.3.2.3.3), counted from its
   * timestamp (when it was published or written); undefined when it has none, 0 or less when expired.
   */
  expiryLeft(event: ResourceEvent): number | undefined {
    const interval = (event.meta?.properties as PublishProperties | undefined)?.messageExpiryInterval
    if (interval === undefined) return undefined
    // Timestamps are microseconds; what is left is rounded to whole seconds, at least 1 while unexpired.
    const left = event.timestamp / 1000 + interval * 1000 - Date.now()
    // Capped at the interval: a timestamp ahead of this clock (another node's) must not extend it.
    return left <= 0 ? 0 : Math.min(interval, Math.max(1, Math.round(left / 1000)))
  }

  /** MQTT 5 property block for an event (without subscription identifiers); `expiry` = seconds left. */
  eventProperties(
    event: ResourceEvent,
    format: string,
    explicitFormat: boolean,
    expiry: number | undefined,
  ): Buffer {
    const meta = event.meta?.properties as PublishProperties | undefined
    const raw = event.value instanceof Uint8Array
    const contentType = raw
      ? event.contentType
      : event.contentType !== undefined || explicitFormat
        ? format
        : undefined
    if (meta === undefined && contentType === undefined) return EMPTY
    const c = this.eventCache(event)
    const key = `${explicitFormat ? 1 : 0}${expiry ?? ''}:${format}`
    const hit = c.props?.get(key)
    if (hit !== undefined) return hit
    const props: PublishProperties = {}
    if (meta) {
      if (meta.userProperties) props.userProperties = meta.userProperties
      if (meta.responseTopic !== undefined) props.responseTopic = meta.responseTopic
      if (meta.correlationData !== undefined) props.correlationData = Buffer.from(meta.correlationData)
      if (expiry !== undefined) props.messageExpiryInterval = expiry
      // The indicator describes the publisher's bytes: sent only when they are forwarded unchanged.
      if (raw && meta.payloadFormatIndicator !== undefined)
        props.payloadFormatIndicator = meta.payloadFormatIndicator
    }
    if (contentType !== undefined) props.contentType = contentType
    const block = encodePublishProperties(props)
    ;(c.props ??= new Map()).set(key, block)
    return block
  }

  withSubscriptionId(props: Buffer, ids: number | number[] | undefined): Buffer {
    if (ids === undefined) return props
    return Buffer.concat([props, encodePublishProperties(undefined, typeof ids === 'number' ? [ids] : ids)])
  }

  /** A QoS 0 PUBLISH; identical packets (same topic, format, flags, no per-subscriber properties) are shared. */
  qos0Packet(
    event: ResourceEvent,
    format: string,
    retain: boolean,
    v5: boolean,
    ids: number | number[] | undefined,
    explicitFormat: boolean,
    expiry: number | undefined,
  ): Buffer {
    const payload = this.payload(event, format)
    if (v5 && ids !== undefined) {
      const props = this.withSubscriptionId(this.eventProperties(event, format, explicitFormat, expiry), ids)
      return encodePublish(this.topicBytes(event), payload, 0, retain, false, 0, props)
    }
    const c = this.eventCache(event)
    const key = `${v5 ? (explicitFormat ? 2 : 1) : 0}${retain ? 1 : 0}${v5 ? (expiry ?? '') : ''}:${format}`
    if (c.packetKey === key) return c.packet!
    let packet = c.packets?.get(key)
    if (packet === undefined) {
      const props = v5 ? this.eventProperties(event, format, explicitFormat, expiry) : null
      packet = encodePublish(this.topicBytes(event), payload, 0, retain, false, 0, props)
      if (c.packetKey === undefined) {
        c.packetKey = key
        c.packet = packet
      } else {
        ;(c.packets ??= new Map()).set(key, packet)
      }
    }
    return packet
  }

  // -------------------------------------------------------------------------------------------
  // Sessions

  /** A session in memory, or restored from its record; undefined when there is none. */
  findSession(clientId: string): Session | undefined {
    const live = this.sessions.get(clientId)
    if (live !== undefined) return live
    // Ended but its erase is not committed yet: the stored record is stale.
    if (this.erasing.has(clientId)) return undefined
    const rec = this.state<StoredSession>(SESSIONS_STORE).get(clientId)
    if (rec === undefined || rec.v !== 1) return undefined
    const session = Session.restore(this, rec)
    this.sessions.set(clientId, session)
    return session
  }

  /** Ends a session: subscriptions closed, persisted state erased; a delayed will is published now. */
  endSession(session: Session): Promise<void> {
    session.destroyed = true
    if (session.expiryTimer) clearTimeout(session.expiryTimer)
    session.expiryTimer = null
    for (const sub of session.subscriptions.values()) {
      sub.closed = true
      sub.handle?.close()
      sub.handle = null
    }
    if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId)
    this.publishWillsNow(session.clientId)
    if (!session.persisted) return Promise.resolve()
    const clientId = session.clientId
    const n = (this.erasing.get(clientId) ?? 0) + 1
    this.erasing.set(clientId, n)
    return session.erase().finally(() => {
      const left = (this.erasing.get(clientId) ?? 1) - 1
      if (left <= 0) this.erasing.delete(clientId)
      else this.erasing.set(clientId, left)
    })
  }

  /** The connection of `session` closed: keep it (durable) or end it. */
  sessionOffline(session: Session): void {
    const orphans = session.detach()
    if (orphans.length > 0) this.redeliverShared(session, orphans)
    if (!session.durable || session.destroyed) {
      if (!session.destroyed) this.endSession(session).catch(loggedByTrack)
      return
    }
    session.disconnectedAt = Date.now()
    void session.save()
    if (!this.closing) this.scheduleExpiry(session)
  }

  private sharedTurn = 0

  /**
   * Messages of a shared subscription that a member left unacknowledged (or queued) when it went away
   * go to another online member of the same group (MQTT 5 section 4.8.2), preferring one with room.
   */
  redeliverShared(from: Session, orphans: Orphan[]): void {
    for (const { filter, event, packetId } of orphans) {
      const members: [Session, SessionSubscription][] = []
      for (const s of this.sessions.values()) {
        if (s.connection === null || s.destroyed) continue
        const sub = s.subscriptions.get(filter)
        if (sub !== undefined && sub.handle !== null && !sub.closed) members.push([s, sub])
      }
      if (members.length === 0) {
        this.logger.debug(`mqtt: no member of ${filter} left for a message on ${event.topic}`)
        continue
      }
      const turn = this.sharedTurn++
      let pick = members[turn % members.length]!
      for (let i = 0; i < members.length; i++) {
        const m = members[(turn + i) % members.length]!
        if (m[0].canTake(m[1])) {
          pick = m
          break
        }
      }
      if (packetId !== undefined) from.dropInflight(packetId)
      pick[0].deliver(pick[1], event, undefined)
    }
  }

  scheduleExpiry(session: Session): void {
    if (session.expiryTimer) clearTimeout(session.expiryTimer)
    session.expiryTimer = null
    const ms = session.expiryMs()
    if (!Number.isFinite(ms)) return
    const remaining = (session.disconnectedAt ?? Date.now()) + ms - Date.now()
    if (remaining <= 0) {
      this.endSession(session).catch(loggedByTrack)
      return
    }
    session.expiryTimer = setTimeout(
      () => {
        session.expiryTimer = null
        if (session.connection === null && !session.destroyed) this.scheduleExpiry(session)
      },
      Math.min(remaining, MAX_TIMER_MS),
    )
    session.expiryTimer.unref?.()
  }

  // -------------------------------------------------------------------------------------------
  // Wills

  /** The connection closed without DISCONNECT: publish now or after the Will Delay Interval. */
  triggerWill(key: Key, will: StoredWill, sessionEnds: boolean, sessionExpiryMs: number): void {
    const delayMs = sessionEnds ? 0 : Math.min(will.delay * 1000, sessionExpiryMs)
    if (delayMs <= 0) {
      this.publishWill(key, will)
      return
    }
    will.dueAt = Date.now() + delayMs
    this.track(this.state<StoredWill>(WILLS_STORE).put(key, will))
    this.scheduleWill(key, will)
  }

  private scheduleWill(key: Key, will: StoredWill): void {
    const list = this.wills.get(will.clientId) ?? []
    const entry: PendingWill = { key, will, timer: null }
    const remaining = (will.dueAt ?? Date.now()) - Date.now()
    if (remaining > 0) {
      entry.timer = setTimeout(() => this.fireWill(entry), Math.min(remaining, MAX_TIMER_MS))
      entry.timer.unref?.()
      list.push(entry)
      this.wills.set(will.clientId, list)
    } else {
      this.publishWill(key, will)
    }
  }

  private fireWill(entry: PendingWill): void {
    const list = this.wills.get(entry.will.clientId)
    if (list) {
      const i = list.indexOf(entry)
      if (i >= 0) list.splice(i, 1)
      if (list.length === 0) this.wills.delete(entry.will.clientId)
    }
    this.publishWill(entry.key, entry.will)
  }

  /** A new connection resumed the session before the delay passed: the will is not sent [MQTT-3.1.3-9]. */
  cancelWills(clientId: string): void {
    const list = this.wills.get(clientId)
    if (!list) return
    this.wills.delete(clientId)
    const store = this.state(WILLS_STORE)
    for (const w of list) {
      if (w.timer) clearTimeout(w.timer)
      this.track(store.delete(w.key))
    }
  }

  /** The session ended (clean start, expiry): delayed wills go out now. */
  publishWillsNow(clientId: string): void {
    const list = this.wills.get(clientId)
    if (!list) return
    this.wills.delete(clientId)
    for (const w of list) {
      if (w.timer) clearTimeout(w.timer)
      this.publishWill(w.key, w.will)
    }
  }

  /** A deleted user's delayed wills are never published. */
  discardWillsOf(username: string): void {
    const store = this.state(WILLS_STORE)
    for (const [clientId, list] of [...this.wills]) {
      const keep = list.filter((w) => w.will.username !== username)
      for (const w of list) {
        if (w.will.username !== username) continue
        if (w.timer) clearTimeout(w.timer)
        this.track(store.delete(w.key))
      }
      if (keep.length === 0) this.wills.delete(clientId)
      else this.wills.set(clientId, keep)
    }
  }

  discardWill(key: Key): Promise<unknown> {
    return this.track(this.state(WILLS_STORE).delete(key))
  }

  persistWill(key: Key, will: StoredWill): Promise<void> {
    return this.track(this.state<StoredWill>(WILLS_STORE).put(key, will))
  }

  /**
   * Publishes a will as its owner; the will record is deleted in the same transaction (published once).
   * Background work: close() waits for it through track(), which also logs a failure.
   */
  publishWill(key: Key, will: StoredWill): void {
    const runtime = this.runtime
    const work = (async () => {
      try {
        // With its owner's current rights, or not at all: a deleted owner's will is never sent as anonymous.
        const user = will.username !== null ? await runtime.findUser(will.username) : runtime.anonymous()
        if (user === null && will.username !== null) {
          this.logger.info(`mqtt: will of ${will.clientId} dropped: user ${will.username} no longer exists`)
          await this.state(WILLS_STORE).delete(key)
          return
        }
        const meta: Record<string, unknown> = { qos: will.qos, clientId: will.clientId }
        if (will.properties) meta.properties = will.properties
        await runtime.publish(
          will.topic,
          {
            payload: Buffer.from(will.payload),
            retain: will.retain,
            qos: will.qos,
            ...(will.contentType !== undefined ? { contentType: will.contentType } : {}),
            meta,
          },
          { user, transport: 'mqtt', clientId: will.clientId },
          { atomic: [{ store: WILLS_STORE, key, value: undefined }] },
        )
      } catch (err) {
        this.logger.warn({ err }, `mqtt: will of ${will.clientId} on ${will.topic} refused`)
        await this.state(WILLS_STORE).delete(key)
      }
    })()
    this.track(work)
  }

  // -------------------------------------------------------------------------------------------
  // Start-up: sessions and wills left by the previous process

  private restore(): void {
    const now = Date.now()
    let records: StoredSession[]
    let wills: { key: Key; value: StoredWill }[]
    try {
      records = [...this.state<StoredSession>(SESSIONS_STORE).entries()].map((e) => e.value)
      wills = [...this.state<StoredWill>(WILLS_STORE).entries()]
    } catch (err) {
      this.logger.error({ err }, 'mqtt: cannot read persisted sessions')
      return
    }
    for (const rec of records) {
      if (rec?.v !== 1) continue
      const session = Session.restore(this, rec)
      if (session.disconnectedAt === null) {
        // Connected when the previous process died: it went offline then.
        session.disconnectedAt = now
        void session.save()
      }
      this.sessions.set(session.clientId, session)
      if (session.expiry < NEVER_EXPIRES) this.scheduleExpiry(session)
    }
    for (const { key, value } of wills) {
      if (!value) continue
      this.scheduleWill(key, { ...value, dueAt: value.dueAt ?? now + value.delay * 1000 })
    }
  }
}

/** For background work whose failure track() has already logged: nobody waits for it. */
function loggedByTrack(): void {}

function clamp(n: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, Math.floor(n)))
}
