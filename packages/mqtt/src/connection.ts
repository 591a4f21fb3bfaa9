import type { Duplex } from 'node:stream'
import { formatForAccept } from './accept.js'
import {
  type AcceptedConnect,
  authenticateConnect,
  checkConnect,
  connackProperties,
  firstUserProperty,
  protocolLevel,
  willOf,
} from './connect-handshake.js'
import type { ConnectionHost } from './connection-host.js'
import { ConnectionWill } from './connection-will.js'
import { EnhancedAuth } from './enhanced-auth.js'
import { type MqttError, ProtocolError, ReasonCode, v3ConnackCode } from './errors.js'
import { type FaultSink, faultReason, guarded, settle } from './fault.js'
import type { FlowStep } from './flow-steps.js'
import { FrameReader, type FrameSink } from './frame-reader.js'
import { InboundFlows } from './inbound-publish.js'
import { KeepAlive } from './keep-alive.js'
import { onPubrec } from './outbound-acks.js'
import { OutboundAliases } from './outbound-encoder.js'
import {
  type AuthPacket,
  type ConnackPacket,
  type ConnectPacket,
  type DisconnectPacket,
  encodeAck,
  generateWithin,
  type Packet,
  PacketParser,
  reasonStringProperty,
  v3Connack,
} from './packets.js'
import type { RequestContext, User } from './runtime.js'
import type { Session } from './session.js'
import type { SessionOutlet } from './session-outlet.js'
import { ownerOf } from './session-owner.js'
import { NEVER_EXPIRES, willKey } from './session-store.js'
import { SocketWriter } from './socket-writer.js'
import type { DoorStats } from './stats.js'
import { SubscribeFlows } from './subscribe-flows.js'
import type { ConnectionInfo, SessionInfo } from './types.js'

/** The connection's states; every transition is in this file. */
enum State {
  AwaitingConnect = 0,
  Connecting = 1,
  Connected = 2,
  Closed = 3,
}

const JSON_TYPE = 'application/json'

/**
 * One client connection over a duplex stream, as a small state machine: AwaitingConnect → Connecting
 * (the handshake, `connect-handshake.ts`, with `enhanced-auth.ts`) → Connected → Closed. Connected, frames
 * go to the inbound publish flows (`inbound-publish.ts`), the subscribe flows (`subscribe-flows.ts`) or
 * the session (outbound acknowledgements); bytes leave through the socket writer. Outbound delivery state
 * lives in the Session so it survives the connection; the session registry attaches and detaches it.
 */
export class Connection implements FrameSink, FaultSink, SessionOutlet {
  private state = State.AwaitingConnect
  version = 4
  v5 = false
  session: Session | null = null
  readonly ctx: RequestContext = { user: null, transport: 'mqtt' }
  clientId = ''
  /** Format for subscribers without a per-subscription `accept`. */
  accept = JSON_TYPE
  acceptExplicit = false
  contentType: string | undefined
  clientReceiveMaximum = 65535
  clientMaximumPacketSize = Number.POSITIVE_INFINITY
  /** v5 Request Problem Information: false = no reason strings / user properties on acknowledgements. */
  private problemInfo = true
  /** Outbound topic aliases; null when the client accepts none (its Topic Alias Maximum is 0). */
  outAliases: OutboundAliases | null = null
  /** Enhanced authentication, when CONNECT named a method (kept for re-authentication). */
  private enhanced: EnhancedAuth | null = null

  private readonly reader: FrameReader
  private readonly writer: SocketWriter
  private readonly keepAlive: KeepAlive
  private parser: PacketParser | null = null
  /** Packets pipelined behind CONNECT, handled once the handshake is done. */
  private held: [Buffer, number][] | null = null
  private connectTimer: NodeJS.Timeout | null = null
  private closeTimer: NodeJS.Timeout | null = null
  /** Set at CONNACK. */
  private inbound: InboundFlows | null = null
  private subscribes: SubscribeFlows | null = null
  private readonly will: ConnectionWill
  private countedUser: string | null = null
  /** Holds one of the broker's places (ConnectionLimits), given back on close. */
  private holdsPlace = false
  private faulted = false
  /** ms since the epoch when the stream was handed over. */
  readonly openedAt = Date.now()
  /** The broker's counters for this connection's door (shared by every connection through it). */
  readonly counters: DoorStats

  constructor(
    readonly broker: ConnectionHost,
    readonly stream: Duplex,
    readonly info: ConnectionInfo,
    readonly id: string,
  ) {
    this.reader = new FrameReader(this, broker.maxPacketSize)
    this.writer = new SocketWriter(stream, this, broker.onFlowStep)
    this.keepAlive = new KeepAlive(this, () => {
      if (this.state !== State.Closed) this.disconnectWith(ReasonCode.KeepAliveTimeout, 'keep-alive timeout')
    })
    this.counters = broker.stats.door(info.transport)
    this.will = new ConnectionWill(broker.wills)
    // Every entry into this connection (stream events, timers, continuations) is guarded: see fault().
    stream.on(
      'data',
      guarded(this, (chunk: Buffer) => {
        this.keepAlive.touch()
        this.reader.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)
      }),
    )
    stream.on(
      'error',
      guarded(this, (err: Error) => this.close(`stream error: ${err.message}`)),
    )
    stream.on(
      'end',
      guarded(this, () => this.close('stream ended')),
    )
    stream.on(
      'close',
      guarded(this, () => this.close('stream closed')),
    )
    this.connectTimer = setTimeout(
      guarded(this, () => this.close('no CONNECT in time')),
      broker.connectTimeoutMs,
    )
    this.connectTimer.unref?.()
  }

  get connected(): boolean {
    return this.state === State.Connected
  }

  get closed(): boolean {
    return this.state === State.Closed
  }

  get sessionInfo(): SessionInfo {
    return { clientId: this.clientId, user: this.ctx.user }
  }

  /** Queues a packet; what is queued during one turn of the event loop leaves in one write. */
  write(buf: Buffer): void {
    this.writer.write(buf)
  }

  /** A subscriber that does not read: QoS 0 messages are dropped meanwhile. */
  get congested(): boolean {
    return this.writer.congested
  }

  /** Reports `step` once the packet just written leaves for the socket (crash-point tests). */
  noteSent(step: FlowStep): void {
    this.writer.noteSent(step)
  }

  /**
   * Generates a v5 packet that fits the client's Maximum Packet Size (reason string and user properties
   * dropped first); an empty buffer when it still does not fit.
   */
  sized(packet: Packet): Buffer {
    const buf = generateWithin(packet, this.version, this.clientMaximumPacketSize)
    if (buf.length === 0)
      this.broker.logger.debug(`mqtt: ${packet.cmd} for ${this.clientId} exceeds its maximum packet size`)
    return buf
  }

  /** A reason string for an acknowledgement, when the client did not turn problem information off. */
  ackReason(reason: string | undefined): string | undefined {
    return this.v5 && this.problemInfo ? reason : undefined
  }

  /** PUBACK / PUBREC / PUBREL / PUBCOMP with an optional reason string (dropped if it would not fit). */
  ack(type: number, packetId: number, reasonCode: number, reason?: string): Buffer {
    const r = this.ackReason(reason)
    if (r !== undefined) {
      const buf = encodeAck(type, packetId, reasonCode, true, reasonStringProperty(r))
      if (buf.length <= this.clientMaximumPacketSize) return buf
    }
    return encodeAck(type, packetId, reasonCode, this.v5)
  }

  // -------------------------------------------------------------------------------------------
  // The fault barrier

  /**
   * A fault (exception or rejection) raised while handling this connection closes it, and only it:
   * v5 DISCONNECT 0x83 (or the reason code of a protocol error a handler threw), a CONNACK refusal
   * before the handshake completed; logged once with the client id. Never throws: the process-level
   * handler is not reached from here.
   */
  fault(err: unknown): void {
    const first = !this.faulted
    this.faulted = true
    const { reasonCode, internal } = faultReason(err)
    const who = this.clientId || `connection ${this.id}`
    if (first) {
      const fields = { err, clientId: this.clientId || undefined, connection: this.id }
      if (internal) this.broker.logger.error(fields, `mqtt: internal error while handling ${who}; closing it`)
      else this.broker.logger.warn(fields, `mqtt: closing ${who}: ${(err as Error).message}`)
    }
    const why = internal ? 'internal error' : (err as Error).message
    try {
      if (this.state === State.Closed) {
        if (!this.stream.destroyed) this.stream.destroy()
      } else if (this.state === State.Connecting) {
        this.refuse(reasonCode, why)
      } else {
        this.disconnectWith(reasonCode, why)
      }
    } catch {
      // Closing failed too (the fault may sit in the encoder): cut the stream.
      try {
        this.close(why)
      } catch {}
      if (!this.stream.destroyed) this.stream.destroy()
    }
  }

  // -------------------------------------------------------------------------------------------
  // Framing and dispatch

  onFrame(frame: Buffer, bodyOffset: number): void {
    try {
      this.dispatch(frame, bodyOffset)
    } catch (err) {
      this.fault(err)
    }
  }

  private dispatch(frame: Buffer, bodyOffset: number): void {
    const state = this.state
    if (state === State.Connected) {
      if (frame[0]! >> 4 === 3) this.inbound!.onPublish(frame, bodyOffset)
      else this.onControlFrame(frame)
      return
    }
    if (state === State.Connecting) {
      if (frame[0] === 0xf0 && this.enhanced?.inProgress === true) {
        // Enhanced authentication in progress: AUTH packets are the handshake itself.
        const packet = this.parse(frame)
        if (packet !== null) this.enhanced!.onAuth(packet as AuthPacket)
        return
      }
      // Packets pipelined behind CONNECT wait for the handshake to finish.
      this.held?.push([frame, bodyOffset])
      return
    }
    if (state === State.AwaitingConnect) this.onFirstFrame(frame, bodyOffset)
  }

  onFrameError(error: MqttError): void {
    this.protocolViolation(error)
  }

  private parse(frame: Buffer): Packet | null {
    this.parser ??= new PacketParser(this.version)
    const packet = this.parser.parse(frame)
    if (packet instanceof Error) {
      this.protocolViolation(packet)
      return null
    }
    return packet
  }

  /** A first packet that is no usable CONNECT (often not MQTT at all): logged like a protocol error. */
  private closeBeforeConnect(reason: string): void {
    this.protocolViolation(new ProtocolError(reason))
  }

  private onFirstFrame(frame: Buffer, bodyOffset: number): void {
    if (frame[0] !== 0x10) {
      // [MQTT-3.1.0-1] the first packet must be CONNECT; close without CONNACK.
      this.closeBeforeConnect('first packet was not CONNECT')
      return
    }
    const level = protocolLevel(frame, bodyOffset)
    if (typeof level !== 'number') {
      // [MQTT-3.1.2-2] CONNACK 0x01 unacceptable protocol version (3.1.1 format, which every client reads).
      if (level.unsupportedVersion) this.stream.write(v3Connack(false, 1))
      this.closeBeforeConnect(level.error)
      return
    }
    this.version = level
    this.v5 = level === 5
    const packet = this.parse(frame)
    if (packet === null) return
    this.state = State.Connecting
    this.held = []
    settle(this, this.onConnect(packet as ConnectPacket), () => {})
  }

  private onControlFrame(frame: Buffer): void {
    // A plain PUBACK (no reason code, no properties; flags 0) is four bytes: read it without
    // mqtt-packet, whose parser (BufferList, packet object, events) was ~8 % of the CPU of S3.
    if (frame[0] === 0x40 && frame.length === 4) {
      this.session!.complete((frame[2]! << 8) | frame[3]!, 1, 'publish')
      return
    }
    const packet = this.parse(frame)
    if (packet === null) return
    switch (packet.cmd) {
      case 'puback':
        this.session!.complete(packet.messageId!, 1, 'publish')
        return
      case 'pubrec':
        onPubrec(this, this.broker.onFlowStep, packet.messageId!, packet.reasonCode ?? 0)
        return
      case 'pubcomp':
        this.session!.complete(packet.messageId!, 2, 'pubrel')
        return
      case 'pubrel':
        this.inbound!.onPubrel(packet.messageId!)
        return
      case 'subscribe':
        this.subscribes!.onSubscribe(packet)
        return
      case 'unsubscribe':
        this.subscribes!.onUnsubscribe(packet)
        return
      case 'pingreq':
        this.inbound!.pong()
        return
      case 'disconnect':
        this.onDisconnect(packet)
        return
      case 'auth':
        // MQTT 5 section 4.12: AUTH without enhanced authentication at CONNECT is a protocol error.
        if (this.enhanced === null)
          this.protocolViolation(new ProtocolError('AUTH with an authentication method not used at CONNECT'))
        else this.enhanced.onAuth(packet)
        return
      case 'connect':
        // [MQTT-3.1.0-2] a second CONNECT is a protocol violation.
        this.protocolViolation(new ProtocolError('second CONNECT'))
        return
      default:
        // CONNACK, SUBACK, UNSUBACK, PINGRESP only travel server -> client.
        this.protocolViolation(new ProtocolError(`unexpected ${packet.cmd} from a client`))
    }
  }

  // -------------------------------------------------------------------------------------------
  // CONNECT

  private async onConnect(packet: ConnectPacket): Promise<void> {
    const broker = this.broker
    const runtime = broker.runtime
    const v5 = this.v5
    if (this.connectTimer) clearTimeout(this.connectTimer)
    this.connectTimer = null

    const props = packet.properties
    if (v5 && props) {
      // First, so that even a refusing CONNACK respects them [MQTT-3.1.2-24] [MQTT-3.1.2-29].
      if (props.maximumPacketSize !== undefined && props.maximumPacketSize > 0)
        this.clientMaximumPacketSize = props.maximumPacketSize
      if (props.requestProblemInformation === false) this.problemInfo = false
    }
    const verdict = checkConnect(broker, packet, this.version, this.id)
    switch (verdict.kind) {
      case 'violation':
        this.protocolViolation(verdict.error)
        return
      case 'auth-failed':
        this.authFailed(verdict.reasonCode, verdict.why, packet.username)
        return
      case 'refuse':
        if (verdict.clientId !== undefined) this.clientId = verdict.clientId
        this.refuse(verdict.reasonCode, verdict.why)
        return
    }
    const accepted: AcceptedConnect = verdict
    const clientId = accepted.clientId
    this.clientId = clientId
    if (accepted.authMethod !== undefined && accepted.authFactory !== undefined) {
      const { authMethod, authFactory } = accepted
      this.enhanced = new EnhancedAuth(
        this,
        authMethod,
        authFactory,
        runtime,
        broker.connectTimeoutMs,
        broker.logger,
      )
    }

    // The broker's connection limit, before any password is hashed.
    if (!broker.limits.take(broker.sessions.isConnected(clientId))) {
      // 3.1.1 has no quota code: 0x03 Server unavailable says "try later", not "not authorized"
      this.refuse(
        v5 ? ReasonCode.QuotaExceeded : ReasonCode.ServerUnavailable,
        'server connection limit reached',
      )
      return
    }
    this.holdsPlace = true

    const enhanced = this.enhanced
    const auth = await authenticateConnect(
      broker,
      packet,
      this.info,
      enhanced !== null ? () => enhanced.run(props?.authenticationData, packet.username, null) : undefined,
    )
    if (auth === null) return
    if ('failed' in auth) {
      this.authFailed(auth.failed, auth.why, packet.username)
      return
    }
    const user = auth.user
    if (this.state !== State.Connecting) return
    if (broker.closing) {
      this.refuse(ReasonCode.ServerUnavailable, 'server shutting down')
      return
    }
    if (user !== null && !user.superUser) {
      if (!broker.addUserConnection(user.username)) {
        this.refuse(ReasonCode.QuotaExceeded, 'too many connections')
        return
      }
      this.countedUser = user.username
    }
    this.ctx.user = user
    this.ctx.clientId = clientId
    this.applyFormats(packet)

    // Session: ownership, takeover [MQTT-3.1.4-2], clean start, resume.
    const expiry = v5 ? (props?.sessionExpiryInterval ?? 0) : packet.clean ? 0 : NEVER_EXPIRES
    const owner = ownerOf(user, runtime.anonymous())
    // A cluster: the client id is taken from the node that serves it first (its session state arrives here).
    await broker.sessions.acquire(clientId)
    if (this.state !== State.Connecting) return
    let claim = broker.sessions.claim(clientId, owner, packet.clean === true)
    if (claim instanceof Promise) claim = await claim
    if (claim.refused !== undefined) {
      // Another user's session: not resumed, taken over, replaced or ended by this connection.
      broker.logger.warn(`mqtt: client id ${clientId} belongs to another user's session; CONNECT refused`)
      this.refuse(ReasonCode.ClientIdentifierNotValid, 'client identifier in use by another user')
      return
    }
    if (this.state !== State.Connecting) return
    const sessionPresent = claim.resumed !== undefined
    const { session, persisted } = broker.sessions.attach(clientId, claim.resumed, this, {
      expiry,
      owner,
      protocolVersion: this.version,
    })
    this.session = session
    if (persisted !== null) await persisted

    const will = willOf(packet, clientId, owner, v5, this.contentType)
    if (will !== null) await this.will.set(willKey(clientId, this.id), will)
    if (this.state !== State.Connecting || session.connection !== this) return
    if (session.durable || will) broker.onFlowStep?.('connect-persisted')

    // CONNACK.
    if (v5) {
      const properties = connackProperties(broker, packet, accepted, this.sessionInfo, auth.data)
      this.stream.write(
        this.sized({ cmd: 'connack', reasonCode: 0, sessionPresent, properties } as ConnackPacket),
      )
    } else {
      this.stream.write(v3Connack(sessionPresent, 0))
    }
    this.state = State.Connected
    this.inbound = new InboundFlows(this, broker, v5 && broker.topicAliasMaximum > 0)
    this.subscribes = new SubscribeFlows(this, broker)
    this.keepAlive.start(accepted.keepAlive)
    this.counters.connects++
    broker.emit('connected', this.sessionInfo, this.stream)

    if (sessionPresent) {
      session.retransmit(this)
      this.subscribes.resubscribe(session)
    }
    const held = this.held
    this.held = null
    if (held) for (const [frame, off] of held) if (this.state === State.Connected) this.onFrame(frame, off)
  }

  /** The record format subscribers get, and the connection's content type, from the transport and CONNECT. */
  private applyFormats(packet: ConnectPacket): void {
    const transportFormat = formatForAccept(this.info.accept)
    if (transportFormat !== undefined) {
      this.accept = transportFormat
      this.acceptExplicit = true
    }
    const props = packet.properties
    if (!this.v5 || !props) return
    // Per-connection settings from CONNECT properties.
    if (props.receiveMaximum !== undefined) this.clientReceiveMaximum = props.receiveMaximum
    if (props.topicAliasMaximum !== undefined && props.topicAliasMaximum > 0)
      this.outAliases = new OutboundAliases(props.topicAliasMaximum)
    const accept = firstUserProperty(props, 'accept')
    if (accept) {
      this.accept = accept
      this.acceptExplicit = true
    }
    const contentType = firstUserProperty(props, 'content-type')
    if (contentType) this.contentType = contentType
  }

  private refuse(reason: number, why: string): void {
    if (this.state === State.Closed) return
    if (this.v5) {
      // CONNACK may carry a reason string even when problem information is off [MQTT-3.1.2-29].
      this.stream.write(
        this.sized({
          cmd: 'connack',
          reasonCode: reason,
          sessionPresent: false,
          properties: { reasonString: why },
        } as ConnackPacket),
      )
    } else {
      this.stream.write(v3Connack(false, v3ConnackCode(reason)))
    }
    this.close(`CONNECT refused: ${why}`, true)
  }

  private authFailed(reason: number, why: string, username: string | undefined): void {
    this.broker.stats.authFailures++
    this.broker.emit('auth-failed', { clientId: this.clientId, username, reason: why }, this.stream)
    this.refuse(reason, why)
  }

  // -------------------------------------------------------------------------------------------
  // Enhanced authentication (MQTT 5 section 4.12)

  /** Sends an AUTH packet of an exchange; `now`: flushed at once. */
  sendAuth(packet: AuthPacket, now: boolean): void {
    this.write(this.sized(packet))
    if (now) this.writer.flush()
  }

  get user(): User | null {
    return this.ctx.user
  }

  reauthenticated(user: User): void {
    this.ctx.user = user
  }

  reauthenticationFailed(reasonCode: number, reason: string): void {
    this.broker.emit(
      'auth-failed',
      { clientId: this.clientId, username: this.ctx.user?.username, reason },
      this.stream,
    )
    this.disconnectWith(reasonCode, `re-authentication failed: ${reason}`)
  }

  // -------------------------------------------------------------------------------------------
  // DISCONNECT and closing

  private onDisconnect(packet: DisconnectPacket): void {
    const session = this.session!
    const rc = packet.reasonCode ?? 0
    const expiry = packet.properties?.sessionExpiryInterval
    if (this.v5 && expiry !== undefined) {
      if (session.expiry === 0 && expiry !== 0) {
        // [MQTT-3.14.2-2]
        this.protocolViolation(new ProtocolError('session expiry set at DISCONNECT after 0 at CONNECT'))
        return
      }
      session.setExpiry(expiry)
    }
    // Normal disconnect discards the will [MQTT-3.1.2-10]; v5 0x04 asks for it.
    const withWill = this.v5 && rc === ReasonCode.DisconnectWithWill
    const discarded = this.will.disconnect(withWill)
    if (discarded === null) {
      this.close('client disconnected', withWill ? undefined : true)
      return
    }
    // The connection closes once the discard is committed. Nothing is read meanwhile, and a close by the
    // peer publishes nothing.
    this.reader.stop()
    settle(this, discarded, () => {
      this.broker.onFlowStep?.('will-discard-persisted')
      this.close('client disconnected', true)
    })
  }

  /** Another connection took over the session: v5 DISCONNECT 0x8E, then close (will rules apply). */
  takeOver(): void {
    this.disconnectWith(ReasonCode.SessionTakenOver, 'session taken over')
  }

  /** The user was deleted: v5 DISCONNECT with `reasonCode`; the will is dropped, never published. */
  revoke(reasonCode: number, reason: string): void {
    this.will.revoke()
    this.disconnectWith(reasonCode, reason)
  }

  /** The user's role changed: v5 DISCONNECT 0x98 (administrative action); the will rules apply. */
  disconnectAdministratively(reason: string): void {
    this.disconnectWith(ReasonCode.AdministrativeAction, reason)
  }

  /** Broker shutdown: v5 DISCONNECT 0x8B; the will stays persisted and is published after restart. */
  shutdown(): void {
    this.will.keepForNextStart()
    this.disconnectWith(ReasonCode.ServerShuttingDown, 'server shutting down')
  }

  private disconnectWith(reasonCode: number, reason: string): void {
    this.writer.flush()
    if (this.state === State.Connecting && this.enhanced?.inProgress === true) {
      // Before CONNACK (an AUTH exchange): the refusal is a CONNACK (MQTT 5 section 4.13.1).
      this.refuse(
        reasonCode === ReasonCode.ServerShuttingDown ? ReasonCode.ServerUnavailable : reasonCode,
        reason,
      )
      return
    }
    if (this.state === State.Connected && this.v5) {
      // A reason string is allowed on DISCONNECT whatever Request Problem Information says.
      const packet = {
        cmd: 'disconnect',
        reasonCode,
        properties: { reasonString: reason },
      } as DisconnectPacket
      const buf = this.sized(packet)
      if (buf.length > 0) this.stream.write(buf)
    }
    this.close(reason)
  }

  /** Malformed bytes or a protocol violation: this connection closes, v5 with DISCONNECT and the reason code. */
  protocolViolation(error: MqttError): void {
    this.broker.faultLog.warn(
      'protocol-error',
      {
        clientId: this.clientId || undefined,
        remoteAddress: this.info.remoteAddress,
        reasonCode: error.reasonCode,
      },
      `mqtt: closing ${this.clientId || 'a connection'} from ${this.info.remoteAddress ?? 'unknown'}: ${error.message}`,
    )
    this.disconnectWith(error.reasonCode, error.message)
  }

  /**
   * Closes the connection once. `graceful` = normal DISCONNECT (no will) or a refused CONNECT.
   * The session goes offline (durable) or ends; the will is published, delayed or discarded.
   */
  close(reason: string, graceful?: boolean): void {
    const prev = this.state
    if (prev === State.Closed) return
    this.state = State.Closed
    this.writer.stop()
    this.reader.stop()
    if (this.connectTimer) clearTimeout(this.connectTimer)
    this.keepAlive.stop()
    this.enhanced?.abort()
    this.held = null
    const broker = this.broker
    broker.connectionClosed(this)
    const stream = this.stream
    this.writer.flush()
    if (!stream.destroyed) {
      stream.end()
      // A peer that does not close its side is cut off.
      this.closeTimer = setTimeout(() => stream.destroy(), 1000)
      this.closeTimer.unref?.()
      stream.once('close', () => {
        if (this.closeTimer) clearTimeout(this.closeTimer)
      })
    }
    if (this.countedUser !== null) broker.removeUserConnection(this.countedUser)
    if (this.holdsPlace) broker.limits.give()
    const session = this.session
    if (session === null || session.connection !== this) {
      if (prev === State.Connected || prev === State.Connecting) this.will.closed(graceful === true, session)
      if (prev === State.Connected) broker.emit('disconnected', this.sessionInfo, stream, { reason })
      return
    }
    this.will.closed(graceful === true, session)
    broker.sessions.detach(session)
    if (prev === State.Connected) broker.emit('disconnected', this.sessionInfo, stream, { reason })
  }
}
