/**
 * One connection's CONNECT, from the connect deadline and the first frame to CONNACK (MQTT 3.1.1 section
 * 3.1, MQTT 5 section 3.1 and 4.12): the protocol level and the CONNECT packet, the checks
 * (`connect-handshake.ts`), the broker's connection limit, authentication (enhanced authentication
 * included, its AUTH packets before CONNACK), the user's connection count, the session's claim and attach,
 * the will, CONNACK or the refusing CONNACK. Packets pipelined behind CONNECT are held for the connection
 * to handle after CONNACK. It holds what the connection took of the broker (a place, a user's connection)
 * until `release()`, and the enhanced authentication, kept for re-authentication. The connection's own
 * state changes only through the connection's methods (`ConnectPeer`).
 */
import type { Duplex } from 'node:stream'
import { formatForAccept } from './accept.js'
import {
  type AcceptedConnect,
  anonymousConnect,
  authenticateConnect,
  checkConnect,
  connackProperties,
  firstUserProperty,
  protocolLevel,
  willOf,
} from './connect-handshake.js'
import { parseConnectFast } from './connect-parse.js'
import type { ConnectionHost } from './connection-host.js'
import type { ConnectionInfo } from './connection-info.js'
import { type AuthPeer, EnhancedAuth } from './enhanced-auth.js'
import { type MqttError, ProtocolError, ReasonCode, v3ConnackCode } from './errors.js'
import { type FaultSink, settle } from './fault.js'
import {
  type AuthPacket,
  type ConnackPacket,
  type ConnectPacket,
  type Packet,
  PacketParser,
  v3Connack,
} from './packets.js'
import type { User } from './runtime.js'
import type { Session } from './session.js'
import type { SessionOutlet } from './session-outlet.js'
import { ownerOf } from './session-owner.js'
import { NEVER_EXPIRES, type StoredWill, willKey } from './session-store.js'
import type { SessionInfo } from './types.js'

/** What CONNECT sets of a connection's formats and limits (MQTT 5 CONNECT properties, the transport). */
export interface Negotiated {
  /** Format for subscribers without their own `accept`; undefined: the default. */
  accept: string | undefined
  contentType: string | undefined
  receiveMaximum: number | undefined
  topicAliasMaximum: number | undefined
}

/** What the CONNECT flow needs of its connection; each method is the connection changing its own state. */
export interface ConnectPeer extends AuthPeer, SessionOutlet, FaultSink {
  readonly id: string
  readonly info: ConnectionInfo
  readonly v5: boolean
  readonly stream: Duplex
  readonly contentType: string | undefined
  /** Still in the handshake (not closed meanwhile). */
  readonly connecting: boolean
  readonly sessionInfo: SessionInfo
  sized(packet: Packet): Buffer
  /** Parses a frame with the connection's parser; null after a protocol violation (then closed). */
  parse(frame: Buffer): Packet | null
  protocolViolation(error: MqttError): void
  close(reason: string, graceful?: boolean): void
  /** The first frame named this protocol level (3, 4 or 5). */
  protocolChosen(level: number): void
  /** A CONNECT packet arrived: the connection is connecting. */
  connectStarted(): void
  /** The client's Maximum Packet Size and Request Problem Information, before any CONNACK. */
  clientLimits(maximumPacketSize: number | undefined, problemInformation: boolean | undefined): void
  identified(clientId: string): void
  authenticated(user: User | null, negotiated: Negotiated): void
  attached(session: Session): void
  setWill(key: readonly [string, string], will: StoredWill): Promise<void>
  /** CONNACK (accepted) goes out and the connection is connected. */
  established(connack: Buffer, session: Session, keepAlive: number, sessionPresent: boolean): void
}

export class ConnectFlow {
  private holdsPlace = false
  private countedUser: string | null = null
  private enhancedAuth: EnhancedAuth | null = null
  private deadline: NodeJS.Timeout | null
  /** Packets pipelined behind CONNECT, handled by the connection once CONNACK is out. */
  private held: [Buffer, number][] | null = null

  constructor(
    private readonly conn: ConnectPeer,
    private readonly broker: ConnectionHost,
  ) {
    this.deadline = setTimeout(connectTimedOut, broker.connectTimeoutMs, conn)
    this.deadline.unref?.()
  }

  /** Enhanced authentication, when CONNECT named a method (kept for re-authentication). */
  get enhanced(): EnhancedAuth | null {
    return this.enhancedAuth
  }

  /** The connection's first frame (its own buffer, body from `bodyOffset`): CONNECT starts the flow. */
  onFirstFrame(frame: Buffer, bodyOffset: number): void {
    const conn = this.conn
    if (frame[0] !== 0x10) {
      // [MQTT-3.1.0-1] the first packet must be CONNECT; close without CONNACK.
      conn.protocolViolation(new ProtocolError('first packet was not CONNECT'))
      return
    }
    const level = protocolLevel(frame, bodyOffset)
    if (typeof level !== 'number') {
      // [MQTT-3.1.2-2] CONNACK 0x01 unacceptable protocol version (3.1.1 format, which every client reads).
      if (level.unsupportedVersion) conn.stream.write(v3Connack(false, 1))
      conn.protocolViolation(new ProtocolError(level.error)) // often not MQTT at all
      return
    }
    conn.protocolChosen(level)
    // The common CONNECT is read by hand (no mqtt-packet parser per connection); the rest by mqtt-packet,
    // with a parser of its own: many connections never send another packet mqtt-packet parses.
    let packet: Packet | null = parseConnectFast(frame, bodyOffset)
    if (packet === null) {
      const parsed = new PacketParser(level).parse(frame)
      if (parsed instanceof Error) {
        conn.protocolViolation(parsed)
        return
      }
      packet = parsed
    }
    conn.connectStarted()
    this.held = []
    this.stopDeadline()
    settle(conn, this.run(packet as ConnectPacket), () => {})
  }

  /** A frame while CONNECT runs (its own buffer, body from `bodyOffset`). */
  onFrame(frame: Buffer, bodyOffset: number): void {
    const enhanced = this.enhancedAuth
    if (frame[0] === 0xf0 && enhanced?.inProgress === true) {
      // Enhanced authentication in progress: AUTH packets are the handshake itself.
      const packet = this.conn.parse(frame)
      if (packet !== null) enhanced.onAuth(packet as AuthPacket)
      return
    }
    // Packets pipelined behind CONNECT wait for the handshake to finish.
    this.held?.push([frame, bodyOffset])
  }

  /** The packets pipelined behind CONNECT, once: the connection handles them after CONNACK. */
  takeHeld(): [Buffer, number][] | null {
    const held = this.held
    this.held = null
    return held
  }

  async run(packet: ConnectPacket): Promise<void> {
    const conn = this.conn
    const broker = this.broker
    const runtime = broker.runtime
    const v5 = conn.v5
    const props = packet.properties
    // First, so that even a refusing CONNACK respects them [MQTT-3.1.2-24] [MQTT-3.1.2-29].
    if (v5 && props) conn.clientLimits(props.maximumPacketSize, props.requestProblemInformation)
    const verdict = checkConnect(broker, packet, conn.version, conn.id)
    switch (verdict.kind) {
      case 'violation':
        conn.protocolViolation(verdict.error)
        return
      case 'auth-failed':
        this.authFailed(verdict.reasonCode, verdict.why, packet.username)
        return
      case 'refuse':
        if (verdict.clientId !== undefined) conn.identified(verdict.clientId)
        this.refuse(verdict.reasonCode, verdict.why)
        return
    }
    const accepted: AcceptedConnect = verdict
    if (broker.unavailableReason !== undefined) {
      conn.identified(accepted.clientId)
      this.refuse(ReasonCode.ServerUnavailable, broker.unavailableReason)
      return
    }
    const clientId = accepted.clientId
    conn.identified(clientId)
    const { authMethod, authFactory } = accepted
    if (authMethod !== undefined && authFactory !== undefined) {
      this.enhancedAuth = new EnhancedAuth(
        conn,
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

    const enhanced = this.enhancedAuth
    // Anonymous (no method, certificate or user name) is answered without a promise: most of S5's CONNECTs.
    const auth =
      anonymousConnect(broker, packet, conn.info, enhanced === null) ??
      (await authenticateConnect(
        broker,
        packet,
        conn.info,
        enhanced !== null ? () => enhanced.run(props?.authenticationData, packet.username, null) : undefined,
      ))
    if (auth === null) return
    if ('failed' in auth) {
      this.authFailed(auth.failed, auth.why, packet.username)
      return
    }
    const user = auth.user
    if (!conn.connecting) return
    if (broker.closing || broker.unavailableReason !== undefined) {
      this.refuse(ReasonCode.ServerUnavailable, broker.unavailableReason ?? 'server shutting down')
      return
    }
    if (user !== null && !user.superUser) {
      if (!broker.addUserConnection(user.username)) {
        this.refuse(ReasonCode.QuotaExceeded, 'too many connections')
        return
      }
      this.countedUser = user.username
    }
    conn.authenticated(user, this.negotiate(packet))

    // Session: ownership, takeover [MQTT-3.1.4-2], clean start, resume.
    const expiry = v5 ? (props?.sessionExpiryInterval ?? 0) : packet.clean ? 0 : NEVER_EXPIRES
    const owner = ownerOf(user, runtime.anonymous())
    // A cluster: the client id is taken from the node that serves it first (its session state arrives here).
    const acquired = broker.sessions.acquire(clientId)
    if (acquired !== null) await acquired
    if (!conn.connecting) return
    let claim = broker.sessions.claim(clientId, owner, packet.clean === true)
    if (claim instanceof Promise) claim = await claim
    if (claim.refused !== undefined) {
      // Another user's session: not resumed, taken over, replaced or ended by this connection.
      broker.logger.warn(`mqtt: client id ${clientId} belongs to another user's session; CONNECT refused`)
      this.refuse(ReasonCode.ClientIdentifierNotValid, 'client identifier in use by another user')
      return
    }
    if (!conn.connecting) return
    const sessionPresent = claim.resumed !== undefined
    const { session, persisted } = broker.sessions.attach(clientId, claim.resumed, conn, {
      expiry,
      owner,
      protocolVersion: conn.version,
    })
    conn.attached(session)
    if (persisted !== null) await persisted

    const will = willOf(packet, clientId, owner, v5, conn.contentType)
    if (will !== null) await conn.setWill(willKey(clientId, conn.id), will)
    if (!conn.connecting || session.connection !== conn) return
    if (session.durable || will) broker.onFlowStep?.('connect-persisted')

    const connack = v5
      ? conn.sized({
          cmd: 'connack',
          reasonCode: 0,
          sessionPresent,
          properties: connackProperties(broker, packet, accepted, conn.sessionInfo, auth.data),
        } as ConnackPacket)
      : v3Connack(sessionPresent, 0)
    conn.established(connack, session, accepted.keepAlive, sessionPresent)
  }

  /** The record format subscribers get, and the connection's content type, from the transport and CONNECT. */
  private negotiate(packet: ConnectPacket): Negotiated {
    const props = this.conn.v5 ? packet.properties : undefined
    return {
      accept: (props && firstUserProperty(props, 'accept')) || formatForAccept(this.conn.info.accept),
      contentType: (props && firstUserProperty(props, 'content-type')) || undefined,
      receiveMaximum: props?.receiveMaximum,
      topicAliasMaximum: props?.topicAliasMaximum,
    }
  }

  private authFailed(reason: number, why: string, username: string | undefined): void {
    this.broker.stats.authFailures++
    const { clientId, info, stream } = this.conn
    this.broker.emit(
      'auth-failed',
      { clientId, username, reason: why, remoteAddress: info.remoteAddress },
      stream,
    )
    this.refuse(reason, why)
  }

  /** A refusing CONNACK, then the connection closes (gracefully: the will rules of a refused CONNECT). */
  refuse(reason: number, why: string): void {
    const conn = this.conn
    if (conn.closed) return
    if (conn.v5) {
      // CONNACK may carry a reason string even when problem information is off [MQTT-3.1.2-29].
      conn.stream.write(
        conn.sized({
          cmd: 'connack',
          reasonCode: reason,
          sessionPresent: false,
          properties: { reasonString: why },
        } as ConnackPacket),
      )
    } else {
      conn.stream.write(v3Connack(false, v3ConnackCode(reason)))
    }
    conn.close(`CONNECT refused: ${why}`, true)
  }

  private stopDeadline(): void {
    if (this.deadline) clearTimeout(this.deadline)
    this.deadline = null
  }

  /** The connection closed: what it took of the broker goes back. */
  release(): void {
    this.stopDeadline()
    this.held = null
    if (this.countedUser !== null) this.broker.removeUserConnection(this.countedUser)
    this.countedUser = null
    if (this.holdsPlace) this.broker.limits.give()
    this.holdsPlace = false
  }
}

/** CONNECT did not arrive in time (a timer argument, not a closure per connection). */
function connectTimedOut(conn: ConnectPeer): void {
  try {
    conn.close('no CONNECT in time')
  } catch (err) {
    conn.fault(err)
  }
}
