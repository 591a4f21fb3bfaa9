import type { Duplex } from 'node:stream'
import { ConnectFlow, type Negotiated } from './connect-flow.js'
import type { ConnectionHost } from './connection-host.js'
import { ConnectionWill } from './connection-will.js'
import type { EnhancedAuth } from './enhanced-auth.js'
import { type MqttError, ReasonCode } from './errors.js'
import { type FaultSink, faultReason } from './fault.js'
import type { FlowStep } from './flow-steps.js'
import { FrameReader, type FrameSink } from './frame-reader.js'
import { KeepAlive } from './keep-alive.js'
import { OutboundAliases } from './outbound-encoder.js'
import { PacketRouter } from './packet-router.js'
import {
  type AuthPacket,
  type DisconnectPacket,
  encodeAck,
  generateWithin,
  type Packet,
  PacketParser,
  reasonStringProperty,
} from './packets.js'
import type { RequestContext, User } from './runtime.js'
import type { Session } from './session.js'
import type { SessionOutlet } from './session-outlet.js'
import type { StoredWill } from './session-store.js'
import { beginRead, endRead, SocketWriter } from './socket-writer.js'
import type { DoorStats } from './stats.js'
import type { StreamOwner } from './stream-listeners.js'
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
 * (`connect-flow.ts` runs the CONNECT from the first frame to CONNACK, with `connect-handshake.ts` and
 * `enhanced-auth.ts`) → Connected
 * (`packet-router.ts` hands each frame to the inbound publish flows, the subscribe flows or the session) →
 * Closed. Bytes leave through the socket writer. Outbound delivery state lives in the Session so it
 * survives the connection; the session registry attaches and detaches it. Only this class writes its fields.
 */
export class Connection implements FrameSink, FaultSink, SessionOutlet, StreamOwner {
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

  /** The CONNECT flow, from the start (it keeps enhanced authentication for re-authentication). */
  private readonly connect: ConnectFlow
  private readonly reader: FrameReader
  private readonly writer: SocketWriter
  private readonly keepAlive: KeepAlive
  private parser: PacketParser | null = null
  private closeTimer: NodeJS.Timeout | null = null
  /** Set at CONNACK. */
  private router: PacketRouter | null = null
  /** Made when CONNECT carries a will: a connection without one holds none. */
  private will: ConnectionWill | null = null
  private faulted = false
  /** ms since the epoch when the stream was handed over. */
  readonly openedAt = Date.now()
  /** The broker's counters for this connection's door (shared by every connection through it). */
  readonly counters: DoorStats

  constructor(
    readonly broker: ConnectionHost,
    readonly stream: Duplex,
    readonly info: ConnectionInfo,
    /** The broker's count of connections at this one (its id is built from it when asked). */
    private readonly seq: number,
  ) {
    this.reader = new FrameReader(this, broker.maxPacketSize)
    this.writer = new SocketWriter(stream, this, broker.onFlowStep)
    this.keepAlive = new KeepAlive(broker.keepAlives, this)
    this.counters = broker.stats.door(info.transport)
    // Every entry into this connection (stream events, timers, continuations) is guarded: see fault().
    // The stream's listeners are the broker's, shared by every connection.
    broker.streams.attach(stream, this)
    this.connect = new ConnectFlow(this, broker)
  }

  /** Unique per broker start (will keys are [clientId, connection id]); built when asked, not kept. */
  get id(): string {
    return `${this.broker.bootId}.${this.seq}`
  }

  /** Bytes arrived (the broker's shared 'data' listener; a throw goes to fault()). */
  onData(chunk: Buffer): void {
    this.keepAlive.touch()
    let frames = 0
    beginRead()
    try {
      frames = this.reader.push(chunk)
    } finally {
      endRead(frames === 1)
    }
  }

  get enhanced(): EnhancedAuth | null {
    return this.connect.enhanced
  }

  keepAliveTimedOut(): void {
    if (this.state !== State.Closed) this.disconnectWith(ReasonCode.KeepAliveTimeout, 'keep-alive timeout')
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

  /** A promise while the socket is backed up (see SocketWriter.drained); undefined when it takes more. */
  drained(): Promise<void> | undefined {
    return this.writer.drained()
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
        this.connect.refuse(reasonCode, why)
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

  onFrame(buf: Buffer, start: number, body: number, end: number): void {
    try {
      if (this.state === State.Connected) this.router!.onFrame(buf, start, body, end)
      else
        this.beforeConnected(start === 0 && end === buf.length ? buf : buf.subarray(start, end), body - start)
    } catch (err) {
      this.fault(err)
    }
  }

  /** A frame before CONNACK (its own buffer, body from `bodyOffset`). */
  private beforeConnected(frame: Buffer, bodyOffset: number): void {
    const state = this.state
    if (state === State.Connecting) this.connect.onFrame(frame, bodyOffset)
    else if (state === State.AwaitingConnect) this.connect.onFirstFrame(frame, bodyOffset)
  }

  stopReading(): void {
    this.reader.stop()
  }

  onFrameError(error: MqttError): void {
    this.protocolViolation(error)
  }

  parse(frame: Buffer): Packet | null {
    this.parser ??= new PacketParser(this.version)
    const packet = this.parser.parse(frame)
    if (packet instanceof Error) {
      this.protocolViolation(packet)
      return null
    }
    return packet
  }

  // -------------------------------------------------------------------------------------------
  // CONNECT (connect-flow.ts runs it; these are its steps that change this connection's state)

  get connecting(): boolean {
    return this.state === State.Connecting
  }

  protocolChosen(level: number): void {
    this.version = level
    this.v5 = level === 5
  }

  connectStarted(): void {
    this.state = State.Connecting
  }

  clientLimits(maximumPacketSize: number | undefined, problemInformation: boolean | undefined): void {
    if (maximumPacketSize !== undefined && maximumPacketSize > 0)
      this.clientMaximumPacketSize = maximumPacketSize
    if (problemInformation === false) this.problemInfo = false
  }

  identified(clientId: string): void {
    this.clientId = clientId
  }

  authenticated(user: User | null, negotiated: Negotiated): void {
    this.ctx.user = user
    this.ctx.clientId = this.clientId
    if (negotiated.accept !== undefined) {
      this.accept = negotiated.accept
      this.acceptExplicit = true
    }
    if (negotiated.contentType !== undefined) this.contentType = negotiated.contentType
    if (negotiated.receiveMaximum !== undefined) this.clientReceiveMaximum = negotiated.receiveMaximum
    const aliases = negotiated.topicAliasMaximum
    if (aliases !== undefined && aliases > 0) this.outAliases = new OutboundAliases(aliases)
  }

  attached(session: Session): void {
    this.session = session
  }

  setWill(key: readonly [string, string], will: StoredWill): Promise<void> {
    this.will ??= new ConnectionWill(this.broker.wills)
    return this.will.set(key, will)
  }

  /** DISCONNECT: see ConnectionWill.disconnect (null: no will, nothing to discard). */
  disconnectWill(withWill: boolean): Promise<unknown> | null {
    return this.will?.disconnect(withWill) ?? null
  }

  established(connack: Buffer, session: Session, keepAlive: number, sessionPresent: boolean): void {
    const broker = this.broker
    this.stream.write(connack)
    this.state = State.Connected
    this.router = new PacketRouter(this, broker)
    this.keepAlive.start(keepAlive)
    this.counters.connects++
    broker.emit('connected', this.sessionInfo, this.stream)
    if (sessionPresent) {
      session.retransmit(this)
      this.router.resubscribe(session)
    }
    const held = this.connect.takeHeld()
    if (held)
      for (const [frame, off] of held)
        if (this.state === State.Connected) this.onFrame(frame, 0, off, frame.length)
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
      {
        clientId: this.clientId,
        username: this.ctx.user?.username,
        reason,
        remoteAddress: this.info.remoteAddress,
      },
      this.stream,
    )
    this.disconnectWith(reasonCode, `re-authentication failed: ${reason}`)
  }

  // -------------------------------------------------------------------------------------------
  // DISCONNECT and closing

  /** Another connection took over the session: v5 DISCONNECT 0x8E, then close (will rules apply). */
  takeOver(): void {
    this.disconnectWith(ReasonCode.SessionTakenOver, 'session taken over')
  }

  /** The user was deleted: v5 DISCONNECT with `reasonCode`; the will is dropped, never published. */
  revoke(reasonCode: number, reason: string): void {
    this.will?.revoke()
    this.disconnectWith(reasonCode, reason)
  }

  /**
   * The broker cannot serve now (`Broker.unavailable`): v5 DISCONNECT 0x9C Use another server (0x88 Server
   * unavailable is a CONNACK code only, MQTT 5 section 3.14.2.1); the will rules apply.
   */
  unavailable(reason: string): void {
    this.disconnectWith(ReasonCode.UseAnotherServer, reason)
  }

  /** The user's role changed: v5 DISCONNECT 0x98 (administrative action); the will rules apply. */
  disconnectAdministratively(reason: string): void {
    this.disconnectWith(ReasonCode.AdministrativeAction, reason)
  }

  /** Broker shutdown: v5 DISCONNECT 0x8B; the will stays persisted and is published after restart. */
  shutdown(): void {
    this.will?.keepForNextStart()
    this.disconnectWith(ReasonCode.ServerShuttingDown, 'server shutting down')
  }

  private disconnectWith(reasonCode: number, reason: string): void {
    this.writer.flush()
    if (this.state === State.Connecting && this.enhanced?.inProgress === true) {
      // Before CONNACK (an AUTH exchange): the refusal is a CONNACK (MQTT 5 section 4.13.1).
      this.connect.refuse(
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
    this.keepAlive.stop()
    this.enhanced?.abort()
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
    this.connect.release()
    const session = this.session
    if (session === null || session.connection !== this) {
      if (prev === State.Connected || prev === State.Connecting) this.will?.closed(graceful === true, session)
      if (prev === State.Connected) broker.emit('disconnected', this.sessionInfo, stream, { reason })
      return
    }
    this.will?.closed(graceful === true, session)
    broker.sessions.detach(session)
    if (prev === State.Connected) broker.emit('disconnected', this.sessionInfo, stream, { reason })
  }
}
