import { isUtf8 } from 'node:buffer'
import { randomUUID } from 'node:crypto'
import type { Duplex } from 'node:stream'
import { isSharedFilter } from '@proj/topic-matcher'
import { formatForAccept } from './accept.js'
import type { AuthExchange, AuthMethodFactory, AuthResult } from './auth.js'
import type { ConnectionHost } from './connection-host.js'
import {
  MalformedPacketError,
  type MqttError,
  ProtocolError,
  ReasonCode,
  reasonCodeFor,
  subackFailureCode,
  v3ConnackCode,
} from './errors.js'
import { type FaultSink, faultReason, guarded, settle } from './fault.js'
import type { FlowStep } from './flow-steps.js'
import { FrameReader, type FrameSink } from './frame-reader.js'
import { OutboundAliases } from './outbound-encoder.js'
import {
  type AuthPacket,
  type ConnackPacket,
  type ConnectPacket,
  type DisconnectPacket,
  encodeAck,
  generateWithin,
  type InboundPublish,
  type Packet,
  PacketParser,
  PINGRESP,
  PUBACK,
  PUBCOMP,
  PUBREC,
  PUBREL,
  parsePublish,
  reasonStringProperty,
  type SubackPacket,
  type SubscribePacket,
  type Subscription,
  type UnsubackPacket,
  type UnsubscribePacket,
  v3Connack,
} from './packets.js'
import { RefusalLog } from './refusal-log.js'
import type { EventMeta, PublishMessage, RequestContext, Runtime, User } from './runtime.js'
import type { Session, SessionSubscription } from './session.js'
import type { SessionOutlet } from './session-outlet.js'
import { ownerOf } from './session-owner.js'
import {
  NEVER_EXPIRES,
  packetKey,
  QOS2_STORE,
  type StoredWill,
  sessionKeysFit,
  WILLS_STORE,
  willKey,
} from './session-store.js'
import type { DoorStats } from './stats.js'
import { truncateUtf8 } from './string-field.js'
import { isValidTopicFilter, isValidTopicName, isValidUtf8String } from './topic-validate.js'
import type { ConnectionInfo, SessionInfo } from './types.js'

enum State {
  AwaitingConnect = 0,
  Connecting = 1,
  Connected = 2,
  Closed = 3,
}

interface AckEntry {
  /** PUBACK or PUBREC; NO_ACK holds a QoS 0 publish's place when a refusal may close the connection. */
  type: number
  packetId: number
  reasonCode: number
  reason: string | undefined
  done: boolean
  /** Instead of an acknowledgement, the connection closes here (after the ones before it went out). */
  closeReason: string | undefined
}

const NO_ACK = 0

/** An enhanced-authentication exchange in progress (CONNECT or re-authentication). */
interface AuthState {
  exchange: AuthExchange
  /** Resolves with the client's next AUTH 0x18 Authentication Data. */
  waiter: ((data: Buffer | undefined) => void) | null
  timer: NodeJS.Timeout | null
}

/** Inbound publishes not yet committed before the stream is paused (back-pressure). */
const PAUSE_AT = 1024
const RESUME_AT = 256
const JSON_TYPE = 'application/json'
/** Queued outbound bytes that trigger a write before the end of the event-loop turn. */
const FLUSH_BYTES = 64 * 1024
const MAX_BUFFERED = 8 * 1024 * 1024

function firstUserProperty(
  props: { userProperties?: Record<string, string | string[]> } | undefined,
  name: string,
) {
  const v = props?.userProperties?.[name]
  return Array.isArray(v) ? v[0] : v
}

/**
 * One client connection over a duplex stream: framing, the CONNECT handshake, keep-alive, the inbound
 * QoS flows and acknowledgement order, topic aliases, limits, and the will. Outbound delivery state
 * lives in the Session so it survives the connection.
 */
export class Connection implements FrameSink, FaultSink, SessionOutlet {
  state = State.AwaitingConnect
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
  problemInfo = true
  /** Outbound topic aliases; null when the client accepts none (its Topic Alias Maximum is 0). */
  outAliases: OutboundAliases | null = null
  /** Authentication Method of CONNECT (enhanced authentication), for re-authentication. */
  private authMethod: string | undefined
  private auth: AuthState | null = null

  private readonly reader: FrameReader
  private parser: PacketParser | null = null
  private held: [Buffer, number][] | null = null
  private keepAliveMs = 0
  private lastRx = Date.now()
  private keepAliveTimer: NodeJS.Timeout | null = null
  private connectTimer: NodeJS.Timeout | null = null
  private closeTimer: NodeJS.Timeout | null = null
  private aliases: Map<number, string> | null = null
  private acks: AckEntry[] = []
  private ackHead = 0
  private inflightIn = 0
  private quotaUsed = 0
  private paused = false
  private will: StoredWill | null = null
  private willKey: readonly [string, string] | null = null
  private countedUser: string | null = null
  /** Holds one of the broker's places (ConnectionLimits), given back on close. */
  private holdsPlace = false
  private sendWill = true
  private faulted = false
  private refusals: RefusalLog | null = null
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
    this.counters = broker.stats.door(info.transport)
    // Every entry into this connection (stream events, timers, continuations) is guarded: see fault().
    stream.on(
      'data',
      guarded(this, (chunk: Buffer) => {
        this.lastRx = Date.now()
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

  get sessionInfo(): SessionInfo {
    return { clientId: this.clientId, user: this.ctx.user }
  }

  /**
   * Queues a packet; everything queued during one turn of the event loop leaves in one write
   * (one syscall instead of one per packet, the largest cost under load).
   */
  write(buf: Buffer): void {
    if (this.state === State.Closed) return
    const out = this.out
    out.push(buf)
    this.outBytes += buf.length
    if (out.length === 1) setImmediate(this.flushOut)
    else if (this.outBytes >= FLUSH_BYTES) this.flushOut()
  }

  /** A subscriber that does not read: QoS 0 messages are dropped while this much is buffered for it. */
  get congested(): boolean {
    return this.outBytes + this.stream.writableLength > MAX_BUFFERED
  }

  private out: Buffer[] = []
  private outBytes = 0
  private readonly flushOut = (): void => {
    const out = this.out
    if (out.length === 0) return
    this.out = []
    const bytes = this.outBytes
    this.outBytes = 0
    if (this.stream.destroyed) return
    try {
      this.stream.write(out.length === 1 ? out[0]! : Buffer.concat(out, bytes))
    } catch (err) {
      this.fault(err)
    }
    const steps = this.sentSteps
    if (steps !== null) {
      this.sentSteps = null
      for (const step of steps) this.broker.onFlowStep?.(step)
    }
  }

  /** Flow steps whose packet is in `out`: reported once it is handed to the socket (tests only). */
  private sentSteps: FlowStep[] | null = null

  /** Reports `step` once the packet just written leaves for the socket (crash-point tests). */
  noteSent(step: FlowStep): void {
    if (this.broker.onFlowStep !== undefined) (this.sentSteps ??= []).push(step)
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
      if (frame[0]! >> 4 === 3) this.onPublish(frame, bodyOffset)
      else this.onControlFrame(frame)
      return
    }
    if (state === State.Connecting) {
      if (frame[0] === 0xf0 && this.auth !== null) {
        // Enhanced authentication in progress: AUTH packets are the handshake itself.
        const packet = this.parse(frame)
        if (packet !== null) this.onAuth(packet as AuthPacket)
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
    // Protocol name and level, checked before mqtt-packet (which cannot answer an unknown level).
    const nameLen = frame.length >= bodyOffset + 2 ? (frame[bodyOffset]! << 8) | frame[bodyOffset + 1]! : -1
    const levelPos = bodyOffset + 2 + nameLen
    if (nameLen < 0 || levelPos >= frame.length) {
      this.closeBeforeConnect('malformed CONNECT')
      return
    }
    const name = frame.toString('latin1', bodyOffset + 2, levelPos)
    const level = frame[levelPos]! & 0x7f
    if (name !== 'MQTT' && name !== 'MQIsdp') {
      this.closeBeforeConnect('unknown protocol name') // [MQTT-3.1.2-1]
      return
    }
    if ((name === 'MQTT' && level !== 4 && level !== 5) || (name === 'MQIsdp' && level !== 3)) {
      // [MQTT-3.1.2-2] CONNACK 0x01 unacceptable protocol version (3.1.1 format, which every client reads).
      this.stream.write(v3Connack(false, 1))
      this.closeBeforeConnect('unsupported protocol version')
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
      case 'pubrec': {
        const rc = packet.reasonCode ?? 0
        if (rc >= 0x80) {
          this.session!.complete(packet.messageId!, 2, 'publish')
          return
        }
        const id = packet.messageId!
        const known = this.session!.received(id)
        if (known === false) {
          this.write(this.ack(PUBREL, id, ReasonCode.PacketIdentifierNotFound, 'packet identifier not found'))
          return
        }
        if (known === true) {
          this.write(encodeAck(PUBREL, id, 0, this.v5))
          this.noteSent('outbound-pubrel-sent')
          return
        }
        // The PUBREL state is durable before PUBREL leaves: after a crash the broker resends PUBREL, never
        // the PUBLISH of a packet id the client may already have completed (a second delivery).
        settle(
          this,
          known,
          () => {
            this.broker.onFlowStep?.('outbound-pubrel-persisted')
            this.write(encodeAck(PUBREL, id, 0, this.v5))
            this.noteSent('outbound-pubrel-sent')
          },
          () => this.close('state write failed'),
        )
        return
      }
      case 'pubcomp':
        this.session!.complete(packet.messageId!, 2, 'pubrel')
        return
      case 'pubrel':
        this.onPubrel(packet.messageId!)
        return
      case 'subscribe':
        this.onSubscribe(packet)
        return
      case 'unsubscribe':
        this.onUnsubscribe(packet)
        return
      case 'pingreq':
        this.pong()
        return
      case 'disconnect':
        this.onDisconnect(packet)
        return
      case 'auth':
        this.onAuth(packet)
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
    if (
      !isValidUtf8String(packet.clientId) ||
      (packet.username !== undefined && !isValidUtf8String(packet.username))
    ) {
      this.protocolViolation(new MalformedPacketError('CONNECT string is not valid UTF-8'))
      return
    }
    if (!v5 && packet.password !== undefined && packet.username === undefined) {
      // [MQTT-3.1.2-22]
      this.protocolViolation(new ProtocolError('password without user name'))
      return
    }
    let authFactory: AuthMethodFactory | undefined
    if (v5 && props) {
      if (props.receiveMaximum === 0) {
        this.protocolViolation(new ProtocolError('receive maximum 0'))
        return
      }
      if (props.maximumPacketSize === 0) {
        this.protocolViolation(new ProtocolError('maximum packet size 0'))
        return
      }
      if (props.authenticationMethod !== undefined) {
        authFactory = Object.hasOwn(broker.authenticationMethods, props.authenticationMethod)
          ? broker.authenticationMethods[props.authenticationMethod]
          : undefined
        if (authFactory === undefined) {
          this.authFailed(
            ReasonCode.BadAuthenticationMethod,
            `authentication method ${props.authenticationMethod} is not supported`,
            packet.username,
          )
          return
        }
        this.authMethod = props.authenticationMethod
      } else if (props.authenticationData !== undefined) {
        // MQTT 5 section 3.1.2.11.10: Authentication Data without a method.
        this.protocolViolation(new ProtocolError('authentication data without a method'))
        return
      }
    }
    const will = packet.will
    if (will) {
      if (!isValidUtf8String(will.topic) || !isValidTopicName(will.topic)) {
        if (v5) {
          this.refuse(ReasonCode.TopicNameInvalid, 'invalid will topic')
          return
        }
        this.protocolViolation(new ProtocolError('invalid will topic'))
        return
      }
      if (
        v5 &&
        will.properties?.payloadFormatIndicator === true &&
        !isUtf8(Buffer.isBuffer(will.payload) ? will.payload : Buffer.from(will.payload))
      ) {
        // MQTT 5 section 3.1.3.2.3: a will payload flagged UTF-8 must be UTF-8.
        this.refuse(ReasonCode.PayloadFormatInvalid, 'will payload is not valid UTF-8')
        return
      }
    }

    // Client identifier [MQTT-3.1.3-6..9].
    let clientId = packet.clientId
    let assigned: string | undefined
    if (clientId.length === 0) {
      if (v5 || (this.version === 4 && packet.clean)) {
        clientId = assigned = `auto-${randomUUID()}`
        if (!v5) assigned = undefined
      } else {
        this.refuse(ReasonCode.ClientIdentifierNotValid, 'empty client id without clean session')
        return
      }
    }
    this.clientId = clientId
    const durable = v5 ? (props?.sessionExpiryInterval ?? 0) > 0 : !packet.clean
    const state = broker.state.bind(broker)
    if (
      (durable && !sessionKeysFit(state, clientId)) ||
      (will && !state(WILLS_STORE).accepts(willKey(clientId, this.id)))
    ) {
      // Its session or will could not be stored: refused now, clearly, not with a storage error later.
      this.refuse(
        ReasonCode.ClientIdentifierNotValid,
        'client identifier too long for a persistent session or will',
      )
      return
    }

    // Keep alive [MQTT-3.1.2-24]; v5 Server Keep Alive [MQTT-3.2.2-21].
    let keepAlive = packet.keepalive ?? 0
    let serverKeepAlive: number | undefined
    const max = broker.maxKeepAlive
    if (max > 0 && max < 65535 && (keepAlive === 0 || keepAlive > max)) {
      if (v5) serverKeepAlive = keepAlive = max
      else if (keepAlive > max) {
        this.refuse(ReasonCode.ClientIdentifierNotValid, 'keep alive above maximum')
        return
      }
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

    // Authentication.
    let user: User | null
    let authData: Uint8Array | undefined
    const username = packet.username
    try {
      if (authFactory !== undefined) {
        const result = await this.authenticateEnhanced(authFactory, props!.authenticationData, username, null)
        if (result === null) return
        if (result.status !== 'success') {
          this.authFailed(
            result.reasonCode ?? ReasonCode.NotAuthorized,
            result.reason ?? 'authentication failed',
            username,
          )
          return
        }
        user = result.user
        authData = result.data
      } else if (this.info.certificateUser !== undefined) {
        user = await runtime.findUser(this.info.certificateUser)
        if (user === null) {
          this.authFailed(ReasonCode.BadUserNameOrPassword, 'unknown certificate user', username)
          return
        }
      } else if (username !== undefined) {
        const password = packet.password ? packet.password.toString('utf8') : ''
        user = await runtime.authenticate(username, password, this.info.remoteAddress)
        if (user === null) {
          this.authFailed(ReasonCode.BadUserNameOrPassword, 'bad user name or password', username)
          return
        }
      } else {
        user = broker.requireAuthentication ? null : runtime.anonymous()
        if (user === null) {
          this.authFailed(ReasonCode.NotAuthorized, 'anonymous access refused', username)
          return
        }
      }
    } catch (err) {
      const rc = reasonCodeFor(err)
      // Back-off after failed attempts (0x89 server busy; 3.1.1: 0x03) is no fault: the runtime reports it.
      if (rc !== ReasonCode.ServerBusy) broker.logger.warn({ err }, 'mqtt: authentication failed')
      this.authFailed(
        rc,
        (rc === ReasonCode.ServerBusy ? errorReason(err) : undefined) ?? 'authentication error',
        username,
      )
      return
    }
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
    const transportFormat = formatForAccept(this.info.accept)
    if (transportFormat !== undefined) {
      this.accept = transportFormat
      this.acceptExplicit = true
    }

    // Per-connection settings from CONNECT properties.
    if (v5 && props) {
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

    if (will) {
      const willProps = will.properties
      const stored: StoredWill = {
        clientId,
        username: owner,
        topic: will.topic,
        payload: Buffer.isBuffer(will.payload) ? will.payload : Buffer.from(will.payload),
        qos: (will.qos ?? 0) as 0 | 1 | 2,
        retain: will.retain ?? false,
        delay: v5 ? (willProps?.willDelayInterval ?? 0) : 0,
        dueAt: null,
      }
      const ct = willProps?.contentType ?? this.contentType
      if (ct !== undefined) stored.contentType = ct
      if (willProps) {
        // Message expiry, payload format, response topic, correlation data and user properties travel
        // with the will message like PUBLISH properties (MQTT 5 section 3.1.3.2).
        const { willDelayInterval: _d, contentType: _c, ...rest } = willProps
        if (Object.keys(rest).length > 0) stored.properties = rest
      }
      this.will = stored
      this.willKey = willKey(clientId, this.id)
      await broker.wills.persist(this.willKey, stored)
    }
    if (this.state !== State.Connecting || session.connection !== this) return
    if (session.durable || will) broker.onFlowStep?.('connect-persisted')

    // CONNACK.
    if (v5) {
      const properties: ConnackPacket['properties'] = {
        topicAliasMaximum: broker.topicAliasMaximum,
        maximumPacketSize: broker.maxPacketSize,
        wildcardSubscriptionAvailable: true,
        subscriptionIdentifiersAvailable: true,
        sharedSubscriptionAvailable: true,
        retainAvailable: true,
      }
      if (broker.receiveMaximum < 65535) properties.receiveMaximum = broker.receiveMaximum
      if (assigned !== undefined) properties.assignedClientIdentifier = assigned
      if (serverKeepAlive !== undefined) properties.serverKeepAlive = serverKeepAlive
      if (props?.requestResponseInformation === true && broker.responseInformation !== false) {
        const info = broker.responseInformation(this.sessionInfo)
        if (info !== undefined) properties.responseInformation = info
      }
      if (this.authMethod !== undefined) {
        properties.authenticationMethod = this.authMethod
        if (authData !== undefined) properties.authenticationData = Buffer.from(authData)
      }
      this.stream.write(
        this.sized({
          cmd: 'connack',
          reasonCode: 0,
          sessionPresent,
          properties,
        } as ConnackPacket),
      )
    } else {
      this.stream.write(v3Connack(sessionPresent, 0))
    }
    this.state = State.Connected
    this.aliases = v5 && broker.topicAliasMaximum > 0 ? new Map() : null
    this.startKeepAlive(keepAlive)
    this.counters.connects++
    broker.emit('connected', this.sessionInfo, this.stream)

    if (sessionPresent) {
      session.retransmit(this)
      this.resubscribe(session)
    }
    const held = this.held
    this.held = null
    if (held) for (const [frame, off] of held) if (this.state === State.Connected) this.onFrame(frame, off)
  }

  // -------------------------------------------------------------------------------------------
  // Enhanced authentication (MQTT 5 section 4.12)

  /**
   * Runs an authentication exchange to its end: each `continue` goes out as AUTH 0x18 and the
   * client's AUTH 0x18 answer is the next step's input. Null when the connection closed meanwhile.
   */
  private async authenticateEnhanced(
    factory: AuthMethodFactory,
    first: Buffer | undefined,
    username: string | undefined,
    current: User | null,
  ): Promise<Exclude<AuthResult, { status: 'continue' }> | null> {
    const method = this.authMethod!
    const exchange = factory({
      method,
      clientId: this.clientId,
      username,
      reauthenticating: current,
      info: this.info,
      runtime: this.broker.runtime,
    })
    const auth: AuthState = { exchange, waiter: null, timer: null }
    this.auth = auth
    try {
      let data = first
      for (;;) {
        const result = await exchange.step(data)
        if (this.state === State.Closed || this.auth !== auth) return null
        if (result.status !== 'continue') return result
        const next = new Promise<Buffer | undefined>((resolve) => {
          auth.waiter = resolve
        })
        auth.timer = setTimeout(
          guarded(this, () => this.close('authentication timed out')),
          this.broker.connectTimeoutMs,
        )
        auth.timer.unref?.()
        this.write(
          this.sized({
            cmd: 'auth',
            reasonCode: ReasonCode.ContinueAuthentication,
            properties: { authenticationMethod: method, authenticationData: Buffer.from(result.data) },
          } as AuthPacket),
        )
        this.flushOut()
        data = await next
        if ((this.state as State) === State.Closed || this.auth !== auth) return null
      }
    } finally {
      if (auth.timer) clearTimeout(auth.timer)
      if (this.auth === auth) this.auth = null
    }
  }

  /** An AUTH packet from the client: the next step of an exchange, or a re-authentication request. */
  private onAuth(packet: AuthPacket): void {
    const rc = packet.reasonCode ?? 0
    const method = packet.properties?.authenticationMethod
    if (this.authMethod === undefined || method !== this.authMethod) {
      // MQTT 5 section 4.12: AUTH without enhanced authentication at CONNECT, or another method.
      this.protocolViolation(new ProtocolError('AUTH with an authentication method not used at CONNECT'))
      return
    }
    const data = packet.properties?.authenticationData
    const auth = this.auth
    if (rc === ReasonCode.ContinueAuthentication && auth?.waiter) {
      const resolve = auth.waiter
      auth.waiter = null
      if (auth.timer) clearTimeout(auth.timer)
      auth.timer = null
      resolve(data)
      return
    }
    if (rc === ReasonCode.ReAuthenticate && auth === null && this.state === State.Connected) {
      settle(this, this.reauthenticate(data), () => {})
      return
    }
    this.protocolViolation(new ProtocolError(`unexpected AUTH 0x${rc.toString(16)}`))
  }

  /** Re-authentication (MQTT 5 section 4.12.1): same method; success keeps the connection, failure ends it. */
  private async reauthenticate(data: Buffer | undefined): Promise<void> {
    const factory = this.broker.authenticationMethods[this.authMethod!]!
    let result: Exclude<AuthResult, { status: 'continue' }> | null
    try {
      result = await this.authenticateEnhanced(factory, data, this.ctx.user?.username, this.ctx.user)
    } catch (err) {
      this.broker.logger.warn({ err }, 'mqtt: re-authentication failed')
      result = { status: 'failure', reason: 'authentication error' }
    }
    if (result === null || this.state !== State.Connected) return
    if (result.status === 'success' && result.user.username === this.ctx.user?.username) {
      this.ctx.user = result.user
      const properties: AuthPacket['properties'] = { authenticationMethod: this.authMethod! }
      if (result.data !== undefined) properties.authenticationData = Buffer.from(result.data)
      this.write(this.sized({ cmd: 'auth', reasonCode: 0, properties } as AuthPacket))
      return
    }
    const reason = result.status === 'failure' ? (result.reason ?? 'authentication failed') : 'another user'
    this.broker.emit(
      'auth-failed',
      { clientId: this.clientId, username: this.ctx.user?.username, reason },
      this.stream,
    )
    // 0x86 is not a DISCONNECT reason code: re-authentication failures are "not authorized".
    const rc = result.status === 'failure' ? result.reasonCode : undefined
    this.disconnectWith(
      rc === ReasonCode.BadAuthenticationMethod ? rc : ReasonCode.NotAuthorized,
      `re-authentication failed: ${reason}`,
    )
  }

  /**
   * Generates a v5 packet that fits the client's Maximum Packet Size: the Reason String and User
   * Properties go first when it does not [MQTT-3.1.2-25] [MQTT-3.2.2-19] [MQTT-3.2.2-20]; an empty
   * buffer when it still does not fit.
   */
  private sized(packet: Packet): Buffer {
    const buf = generateWithin(packet, this.version, this.clientMaximumPacketSize)
    if (buf.length === 0)
      this.broker.logger.debug(`mqtt: ${packet.cmd} for ${this.clientId} exceeds its maximum packet size`)
    return buf
  }

  /** A reason string for an acknowledgement, when the client did not turn problem information off. */
  private ackReason(reason: string | undefined): string | undefined {
    return this.v5 && this.problemInfo ? reason : undefined
  }

  /** PUBACK / PUBREC / PUBREL / PUBCOMP with an optional reason string (dropped if it would not fit). */
  private ack(type: number, packetId: number, reasonCode: number, reason?: string): Buffer {
    const r = this.ackReason(reason)
    if (r !== undefined) {
      const buf = encodeAck(type, packetId, reasonCode, true, reasonStringProperty(r))
      if (buf.length <= this.clientMaximumPacketSize) return buf
    }
    return encodeAck(type, packetId, reasonCode, this.v5)
  }

  /** A resumed durable session: catch up from the change log after each cursor, then go live. */
  private resubscribe(session: Session): void {
    for (const sub of session.subscriptions.values()) {
      if (sub.closed || sub.handle !== null) continue
      // Shared subscriptions do not replay: other members received what was published meanwhile.
      // Cursor 0 (the log was empty at subscribe time) replays from the start.
      const after = sub.shared ? undefined : session.catchUpCursor(sub)
      settle(this, this.openSubscription(sub, false, after), (rc) => {
        if (rc >= 0x80) session.refused(sub, true)
      })
    }
    session.fillWindow()
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
  // Inbound PUBLISH

  private onPublish(frame: Buffer, bodyOffset: number): void {
    const p = parsePublish(frame, bodyOffset, this.v5)
    if (!('topic' in p)) {
      this.protocolViolation(p)
      return
    }
    let topic = p.topic
    const props = p.properties
    if (props !== undefined && props.topicAlias !== undefined) {
      const alias = props.topicAlias
      if (alias === 0 || alias > this.broker.topicAliasMaximum || this.aliases === null) {
        this.protocolViolation(new ProtocolError('topic alias out of range', ReasonCode.TopicAliasInvalid))
        return
      }
      if (topic.length === 0) {
        const known = this.aliases.get(alias)
        if (known === undefined) {
          this.protocolViolation(new ProtocolError('unknown topic alias'))
          return
        }
        topic = known
      } else {
        this.aliases.set(alias, topic)
      }
      delete props.topicAlias
    }
    if (!isValidTopicName(topic)) {
      // [MQTT-3.3.2-2] wildcards in a topic name; v5 0x90.
      this.protocolViolation(new ProtocolError('invalid topic name', ReasonCode.TopicNameInvalid))
      return
    }
    const qos = p.qos
    this.counters.messagesIn[qos]++
    if (qos > 0 && this.v5) {
      const known =
        qos === 2 &&
        (this.session!.hasInboundQos2(p.packetId) ||
          this.session!.pendingInboundQos2(p.packetId) !== undefined)
      if (!known && this.quotaUsed >= this.broker.receiveMaximum) {
        // [MQTT-3.3.4-9]
        this.protocolViolation(
          new ProtocolError(
            'receive maximum exceeded',
            ReasonCode.ReceiveMaximumExceeded,
            'MQTT_RECEIVE_MAXIMUM_EXCEEDED',
          ),
        )
        return
      }
    }
    if (props?.payloadFormatIndicator === true && !isUtf8(p.payload)) {
      // MQTT 5 section 3.3.2.3.2: a payload flagged UTF-8 that is not is refused with 0x99 in the
      // acknowledgement (in order with the others), or by DISCONNECT for QoS 0 (nothing to acknowledge).
      const why = 'payload format indicator says UTF-8 but the payload is not'
      if (qos === 0) {
        this.protocolViolation(new ProtocolError(why, ReasonCode.PayloadFormatInvalid))
        return
      }
      this.finishAck(
        this.pushAck(qos === 1 ? PUBACK : PUBREC, p.packetId),
        ReasonCode.PayloadFormatInvalid,
        why,
      )
      return
    }
    if (qos === 0) this.publishQos0(topic, p)
    else if (qos === 1) this.publishQos1(topic, p)
    else this.publishQos2(topic, p)
  }

  private message(p: InboundPublish): PublishMessage {
    const meta: EventMeta = { qos: p.qos, clientId: this.clientId }
    const props = p.properties
    let contentType = this.contentType
    if (props !== undefined) {
      if (props.contentType !== undefined) {
        contentType = props.contentType
        delete props.contentType
      }
      for (const _ in props) {
        meta.properties = props as Record<string, unknown>
        break
      }
    }
    const msg: PublishMessage = { payload: p.payload, retain: p.retain, qos: p.qos, meta }
    if (contentType !== undefined) msg.contentType = contentType
    return msg
  }

  private publishQos0(topic: string, p: InboundPublish): void {
    this.publishStarted()
    // Closing on a refusal waits for the acknowledgements of the publishes before it.
    const slot = this.closesOnRefusal ? this.pushAck(NO_ACK, 0) : null
    settle(
      this,
      (this.lastPublish = this.broker.runtime.publish(topic, this.message(p), this.ctx)),
      () => {
        this.publishSettled()
        if (slot !== null) this.finishAck(slot, 0)
      },
      (err) => {
        this.publishSettled()
        this.publishRefused(err, topic, 0)
        if (slot !== null) this.finishAck(slot, 0, undefined, 'publish refused')
      },
    )
  }

  /** 3.1.1 with `refusedPublish: 'disconnect'`: a refused publish closes the connection instead of its acknowledgement. */
  private get closesOnRefusal(): boolean {
    return !this.v5 && this.broker.refusedPublish === 'disconnect'
  }

  /**
   * Whether a refused QoS 1/2 publish closes this connection instead of its acknowledgement: as above,
   * and for 3.1.1 always when the write could not be made durable (`UNAVAILABLE`: a cluster without
   * quorum), so the client resends it rather than take the PUBACK for success.
   */
  private closesOn(err: unknown): boolean {
    return this.closesOnRefusal || (!this.v5 && (err as { code?: unknown })?.code === 'UNAVAILABLE')
  }

  private publishQos1(topic: string, p: InboundPublish): void {
    const ack = this.pushAck(PUBACK, p.packetId)
    this.quotaUsed++
    this.publishStarted()
    settle(
      this,
      (this.lastPublish = this.broker.runtime.publish(topic, this.message(p), this.ctx)),
      () => {
        this.publishSettled()
        this.broker.onFlowStep?.('inbound-publish-persisted')
        this.finishAck(ack, 0)
      },
      (err) => {
        this.publishSettled()
        const rc = this.publishRefused(err, topic, 1)
        if (this.v5) this.finishAck(ack, rc, errorReason(err))
        else this.finishAck(ack, 0, undefined, this.closesOn(err) ? 'publish refused' : undefined)
      },
    )
  }

  private publishQos2(topic: string, p: InboundPublish): void {
    const session = this.session!
    const id = p.packetId
    const ack = this.pushAck(PUBREC, id)
    if (session.hasInboundQos2(id)) {
      // A duplicate of a message already applied: acknowledge, do not apply again [MQTT-4.3.3-10].
      this.finishAck(ack, 0)
      return
    }
    const pending = session.pendingInboundQos2(id)
    if (pending !== undefined) {
      settle(
        this,
        pending,
        () =>
          this.finishAck(
            ack,
            session.hasInboundQos2(id) ? 0 : ReasonCode.UnspecifiedError,
            session.hasInboundQos2(id) ? undefined : 'the first copy of this message was refused',
          ),
        () => this.finishAck(ack, ReasonCode.UnspecifiedError, 'the first copy of this message was refused'),
      )
      return
    }
    this.quotaUsed++
    this.publishStarted()
    const options = session.durable
      ? { atomic: [{ store: QOS2_STORE, key: packetKey(session.clientId, id), value: 1 }] }
      : undefined
    // Guarded callbacks: `work` always fulfils, so the PUBREL and duplicate paths waiting on it never
    // see a rejection.
    const work = this.broker.runtime.publish(topic, this.message(p), this.ctx, options).then(
      guarded(this, () => {
        session.inboundQos2Applied(id)
        this.publishSettled()
        this.broker.onFlowStep?.('inbound-publish-persisted')
        this.finishAck(ack, 0)
      }),
      guarded(this, (err: unknown) => {
        this.publishSettled()
        const rc = this.publishRefused(err, topic, 2)
        if (this.v5) {
          this.quotaUsed = Math.max(0, this.quotaUsed - 1)
          this.finishAck(ack, rc, errorReason(err))
        } else if (this.closesOn(err)) {
          this.finishAck(ack, 0, undefined, 'publish refused')
        } else {
          session.inboundQos2Applied(id) // v3.1.1 has no refusal: complete the flow, nothing applied.
          this.finishAck(ack, 0)
        }
      }),
    )
    this.lastPublish = work
    session.inboundQos2Started(id, work)
  }

  /**
   * A publish the runtime refused (nothing applied): emitted as `publish-refused`, logged at warn
   * (rate-limited). Returns its v5 reason code; 3.1.1 has no negative acknowledgement.
   */
  private publishRefused(err: unknown, topic: string, qos: 0 | 1 | 2): number {
    this.broker.stats.dropped.refused++
    const reasonCode = reasonCodeFor(err)
    const reason = err instanceof Error ? err.message : String(err)
    const broker = this.broker
    this.refusals ??= new RefusalLog(broker.logger)
    this.refusals.note({ clientId: this.clientId, topic, reasonCode, reason }, err)
    broker.events.emit(
      'publish-refused',
      { clientId: this.clientId, username: this.session?.owner ?? undefined, topic, qos, reasonCode, reason },
      this.stream,
    )
    return reasonCode
  }

  private onPubrel(id: number): void {
    const session = this.session!
    const release = () => {
      if (!session.inboundQos2Released(id)) {
        this.write(this.ack(PUBCOMP, id, ReasonCode.PacketIdentifierNotFound, 'packet identifier not found'))
        return
      }
      this.quotaUsed = Math.max(0, this.quotaUsed - 1)
      if (!session.durable && !session.persisted) {
        this.write(encodeAck(PUBCOMP, id, 0, this.v5))
        return
      }
      // The id is forgotten durably before PUBCOMP, so a reused id is never mistaken for a duplicate.
      settle(
        this,
        this.broker.track(this.broker.state(QOS2_STORE).delete(packetKey(session.clientId, id))),
        () => {
          this.broker.onFlowStep?.('inbound-pubrel-persisted')
          this.write(encodeAck(PUBCOMP, id, 0, this.v5))
          this.noteSent('inbound-pubcomp-sent')
        },
        () => this.close('state write failed'),
      )
    }
    const pending = session.pendingInboundQos2(id)
    if (pending !== undefined) settle(this, pending, release, release)
    else release()
  }

  /** The last publish handed to the runtime; commits complete in order, so it settles after all before it. */
  private lastPublish: Promise<unknown> | null = null

  /**
   * PINGRESP once this client's earlier publishes (QoS 0 too) are committed: a client may use PINGREQ as a
   * barrier, as with Mosquitto, which applies a publish before it reads the next packet (a retained delete
   * followed by PINGREQ is visible to every subscription made after PINGRESP).
   */
  private pong(): void {
    const last = this.lastPublish
    if (last === null) this.write(PINGRESP)
    else
      settle(
        this,
        last,
        () => this.write(PINGRESP),
        () => this.write(PINGRESP),
      )
  }

  private pushAck(type: number, packetId: number): AckEntry {
    const entry: AckEntry = {
      type,
      packetId,
      reasonCode: 0,
      reason: undefined,
      done: false,
      closeReason: undefined,
    }
    this.acks.push(entry)
    return entry
  }

  /** Acknowledgements leave in the order their PUBLISH packets arrived [MQTT-4.6.0-2] [MQTT-4.6.0-3]. */
  private finishAck(entry: AckEntry, reasonCode: number, reason?: string, closeReason?: string): void {
    entry.done = true
    entry.reasonCode = reasonCode
    entry.closeReason = closeReason
    if (reasonCode >= 0x80) entry.reason = reason
    const acks = this.acks
    let head = this.ackHead
    while (head < acks.length && acks[head]!.done) {
      const a = acks[head++]!
      if (a.closeReason !== undefined) {
        this.close(a.closeReason)
        return
      }
      if (a.type === NO_ACK) continue
      this.write(
        a.reason === undefined
          ? encodeAck(a.type, a.packetId, a.reasonCode, this.v5)
          : this.ack(a.type, a.packetId, a.reasonCode, a.reason),
      )
      if (a.reasonCode < 0x80)
        this.noteSent(a.type === PUBACK ? 'inbound-puback-sent' : 'inbound-pubrec-sent')
      if (a.type === PUBACK || a.reasonCode >= 0x80) this.quotaUsed = Math.max(0, this.quotaUsed - 1)
    }
    if (head === acks.length) {
      this.acks = []
      this.ackHead = 0
    } else {
      this.ackHead = head
    }
  }

  /** Counts an inbound publish until it settles; too many uncommitted ones pause the stream. */
  private publishStarted(): void {
    if (++this.inflightIn >= PAUSE_AT && !this.paused) {
      this.paused = true
      this.stream.pause()
    }
  }

  private publishSettled(): void {
    this.inflightIn--
    if (this.paused && this.inflightIn <= RESUME_AT) {
      this.paused = false
      if (this.state !== State.Closed) this.stream.resume()
    }
  }

  // -------------------------------------------------------------------------------------------
  // SUBSCRIBE / UNSUBSCRIBE

  private onSubscribe(packet: SubscribePacket): void {
    const session = this.session!
    const props = packet.properties
    const subId = props?.subscriptionIdentifier
    if (subId === 0) {
      this.protocolViolation(new ProtocolError('subscription identifier 0'))
      return
    }
    if (packet.subscriptions.length === 0) {
      // [MQTT-3.8.3-3] at least one topic filter.
      this.protocolViolation(new ProtocolError('SUBSCRIBE without topic filters'))
      return
    }
    const accept = firstUserProperty(props, 'accept')
    for (const s of packet.subscriptions) {
      if (!isValidUtf8String(s.topic)) {
        this.protocolViolation(new MalformedPacketError('topic filter is not valid UTF-8'))
        return
      }
      if (this.v5 && s.nl === true && isSharedFilter(s.topic)) {
        // [MQTT-3.8.3-4] No Local on a shared subscription is a protocol error.
        this.protocolViolation(new ProtocolError('no local on a shared subscription'))
        return
      }
    }
    const reasons: string[] = []
    const codes: Promise<number>[] = []
    for (const s of packet.subscriptions) codes.push(this.subscribeOne(session, s, subId, accept, reasons))
    settle(this, Promise.all(codes), (granted) => {
      this.afterSave(session, () => {
        if (this.state !== State.Connected) return
        const suback = { cmd: 'suback', messageId: packet.messageId, granted } as SubackPacket
        const reason = this.ackReason(reasons.length > 0 ? reasons.join('; ') : undefined)
        if (reason !== undefined) suback.properties = { reasonString: reason }
        const buf = this.sized(suback)
        if (buf.length > 0) this.write(buf)
      })
    })
  }

  /**
   * Runs `reply` once a durable session's record is written, or failed to be (track() logged it):
   * the subscriptions are live either way, so the client gets its acknowledgement.
   */
  private afterSave(session: Session, reply: () => void): void {
    if (session.durable) settle(this, session.save(), reply, reply)
    else reply()
  }

  private subscribeOne(
    session: Session,
    s: Subscription,
    subId: number | undefined,
    accept: string | undefined,
    reasons: string[],
  ): Promise<number> {
    const v5 = this.v5
    // v3.1.1 clients may use $share too (as in Mosquitto).
    if (!isValidTopicFilter(s.topic, true)) {
      reasons.push(`invalid topic filter ${s.topic}`)
      return Promise.resolve(v5 ? ReasonCode.TopicFilterInvalid : 0x80)
    }
    const previous = session.subscriptions.get(s.topic)
    const rh = s.rh ?? 0
    const sub = session.subscription({
      filter: s.topic,
      qos: s.qos,
      nl: v5 ? (s.nl ?? false) : false,
      rap: v5 ? (s.rap ?? false) : false,
      rh,
      id: subId,
      accept,
      cursor: previous?.cursor ?? 0,
    })
    // [MQTT-3.8.4-3] a subscription with the same filter replaces the old one.
    const existing = session.addSubscription(sub)
    // Retain Handling [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11]; shared: never (MQTT 5 section 4.8.2).
    const sendRetained = !sub.shared && (rh === 0 || (rh === 1 && existing === undefined))
    return this.openSubscription(sub, sendRetained, undefined, reasons).then((rc) => {
      if (rc >= 0x80) session.refused(sub, false)
      return rc
    })
  }

  /** Opens the runtime subscription for `sub`; resolves to the granted QoS or a failure code. */
  private openSubscription(
    sub: SessionSubscription,
    retained: boolean,
    after: number | undefined,
    reasons?: string[],
  ): Promise<number> {
    const options: Parameters<Runtime['subscribe']>[2] = {
      retained,
      qos: sub.qos,
      noLocal: sub.nl,
      retainAsPublished: sub.rap,
    }
    if (after !== undefined) options.after = after
    if (sub.id !== undefined) options.subscriptionId = sub.id
    if (sub.shared) {
      // The group's round robin skips this member while its window is full.
      const session = this.session!
      options.canDeliver = () => session.canTake(sub)
    }
    return this.broker.runtime.subscribe(sub.filter, sub.listener, options, this.ctx).then(
      (handle) => {
        this.session!.opened(sub, handle, after === undefined, this)
        return sub.qos
      },
      (err) => {
        this.broker.faultLog.warn(
          'subscribe-refused',
          { err, clientId: this.clientId, filter: sub.filter, remoteAddress: this.info.remoteAddress },
          `mqtt: subscribe to ${sub.filter} by ${this.clientId} refused: ${(err as Error).message}`,
        )
        const reason = errorReason(err)
        if (reason !== undefined) reasons?.push(reason)
        return subackFailureCode(err, this.version)
      },
    )
  }

  private onUnsubscribe(packet: UnsubscribePacket): void {
    if (packet.unsubscriptions.length === 0) {
      // [MQTT-3.10.3-2] at least one topic filter.
      this.protocolViolation(new ProtocolError('UNSUBSCRIBE without topic filters'))
      return
    }
    const session = this.session!
    const granted: number[] = []
    for (const filter of packet.unsubscriptions) {
      granted.push(session.removeSubscription(filter) ? ReasonCode.Success : ReasonCode.NoSubscriptionExisted)
    }
    const reply = () => {
      if (this.state !== State.Connected) return
      const ack = { cmd: 'unsuback', messageId: packet.messageId, granted } as UnsubackPacket
      const buf = this.sized(ack)
      if (buf.length > 0) this.write(buf)
    }
    this.afterSave(session, reply)
  }

  // -------------------------------------------------------------------------------------------
  // DISCONNECT, keep-alive, closing

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
    this.sendWill = this.v5 && rc === ReasonCode.DisconnectWithWill
    if (this.sendWill || this.will === null || this.willKey === null) {
      this.close('client disconnected', this.sendWill ? undefined : true)
      return
    }
    // The discard is committed before the connection closes: a crash after the close must not find the
    // will pending at the next start. Nothing is read meanwhile, and a close by the peer publishes nothing.
    const key = this.willKey
    this.will = null
    this.reader.stop()
    settle(this, this.broker.wills.discard(key), () => {
      this.broker.onFlowStep?.('will-discard-persisted')
      this.close('client disconnected', true)
    })
  }

  private startKeepAlive(seconds: number): void {
    if (seconds === 0) return
    // [MQTT-3.1.2-24] one and a half times the keep alive.
    this.keepAliveMs = seconds * 1500
    this.keepAliveTimer = setTimeout(
      guarded(this, () => this.checkKeepAlive()),
      this.keepAliveMs,
    )
    this.keepAliveTimer.unref?.()
  }

  private checkKeepAlive(): void {
    if (this.state === State.Closed) return
    const idle = Date.now() - this.lastRx
    if (idle >= this.keepAliveMs) {
      this.disconnectWith(ReasonCode.KeepAliveTimeout, 'keep-alive timeout')
      return
    }
    this.keepAliveTimer = setTimeout(
      guarded(this, () => this.checkKeepAlive()),
      this.keepAliveMs - idle,
    )
    this.keepAliveTimer.unref?.()
  }

  /** Another connection took over the session: v5 DISCONNECT 0x8E, then close (will rules apply). */
  takeOver(): void {
    this.disconnectWith(ReasonCode.SessionTakenOver, 'session taken over')
  }

  /** The user was deleted: v5 DISCONNECT with `reasonCode`; the will is dropped, never published. */
  revoke(reasonCode: number, reason: string): void {
    if (this.will !== null && this.willKey !== null) this.broker.wills.discard(this.willKey)
    this.will = null
    this.disconnectWith(reasonCode, reason)
  }

  /** The user's role changed: v5 DISCONNECT 0x98 (administrative action); the will rules apply. */
  disconnectAdministratively(reason: string): void {
    this.disconnectWith(ReasonCode.AdministrativeAction, reason)
  }

  /** Broker shutdown: v5 DISCONNECT 0x8B; the will stays persisted and is published after restart. */
  shutdown(): void {
    this.sendWill = false
    this.keepWillForRestart = true
    this.disconnectWith(ReasonCode.ServerShuttingDown, 'server shutting down')
  }

  private keepWillForRestart = false

  private disconnectWith(reasonCode: number, reason: string): void {
    this.flushOut()
    if (this.state === State.Connecting && this.auth !== null) {
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
  private protocolViolation(error: MqttError): void {
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
    this.reader.stop()
    if (this.connectTimer) clearTimeout(this.connectTimer)
    if (this.keepAliveTimer) clearTimeout(this.keepAliveTimer)
    // An AUTH exchange waiting for the client's next step would wait (and hold its timeout) for
    // nothing: waking it lets authenticateEnhanced see the closed state and clear the timer.
    this.auth?.waiter?.(undefined)
    this.held = null
    const broker = this.broker
    broker.connectionClosed(this)
    const stream = this.stream
    this.flushOut()
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
      if (prev === State.Connected || prev === State.Connecting) this.settleWill(graceful === true, session)
      if (prev === State.Connected) broker.emit('disconnected', this.sessionInfo, stream, { reason })
      return
    }
    this.settleWill(graceful === true, session)
    broker.sessions.detach(session)
    if (prev === State.Connected) broker.emit('disconnected', this.sessionInfo, stream, { reason })
  }

  private settleWill(graceful: boolean, session: Session | null): void {
    const will = this.will
    const key = this.willKey
    if (will === null || key === null) return
    this.will = null
    if (this.keepWillForRestart) return
    if (graceful && !this.sendWill) {
      this.broker.wills.discard(key)
      return
    }
    const ends = session === null || !session.durable || session.destroyed
    this.broker.wills.trigger(key, will, ends, session?.expiryMs() ?? 0)
  }
}

/** The reason string for a refusal by the runtime: its message for domain errors, nothing for internal ones. */
function errorReason(err: unknown): string | undefined {
  if (err instanceof Error && typeof (err as { code?: unknown }).code === 'string') return err.message
  return undefined
}
