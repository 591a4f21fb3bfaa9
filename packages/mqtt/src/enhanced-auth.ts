/**
 * One connection's enhanced authentication (MQTT 5 section 4.12): the exchange in progress at CONNECT or
 * at re-authentication, each `continue` sent as AUTH 0x18 and answered by the client's AUTH 0x18 within
 * the connect timeout.
 */
import type { AuthExchange, AuthMethodFactory, AuthResult } from './auth.js'
import type { ConnectionInfo } from './connection-info.js'
import { type MqttError, ProtocolError, ReasonCode } from './errors.js'
import { type FaultSink, guarded, settle } from './fault.js'
import type { AuthPacket } from './packets.js'
import type { Runtime, User } from './runtime.js'
import type { Logger } from './types.js'

/** What an exchange needs of its connection. */
export interface AuthPeer extends FaultSink {
  readonly closed: boolean
  /** Past CONNACK and not closed. */
  readonly connected: boolean
  readonly clientId: string
  readonly info: ConnectionInfo
  /** The user the connection is authenticated as. */
  readonly user: User | null
  /** Sends an AUTH packet; `now`: flushed at once, not at the end of the event-loop turn. */
  sendAuth(packet: AuthPacket, now: boolean): void
  /** Re-authentication succeeded (as the same user, whose rights may have changed). */
  reauthenticated(user: User): void
  /** Re-authentication failed: `auth-failed` is emitted and the connection closes with `reasonCode`. */
  reauthenticationFailed(reasonCode: number, reason: string): void
  protocolViolation(error: MqttError): void
  close(reason: string): void
}

/** An exchange in progress. */
interface Exchange {
  exchange: AuthExchange
  /** Resolves with the client's next AUTH 0x18 Authentication Data. */
  waiter: ((data: Buffer | undefined) => void) | null
  timer: NodeJS.Timeout | null
}

export type AuthOutcome = Exclude<AuthResult, { status: 'continue' }>

export class EnhancedAuth {
  private current: Exchange | null = null

  constructor(
    private readonly peer: AuthPeer,
    /** The Authentication Method of CONNECT; re-authentication must use the same. */
    readonly method: string,
    private readonly factory: AuthMethodFactory,
    private readonly runtime: Runtime,
    private readonly timeoutMs: number,
    private readonly logger: Logger,
  ) {}

  /** An exchange is in progress (before CONNACK: its refusal is a CONNACK, MQTT 5 section 4.13.1). */
  get inProgress(): boolean {
    return this.current !== null
  }

  /**
   * Runs an exchange to its end: each `continue` goes out as AUTH 0x18 and the client's AUTH 0x18 answer
   * is the next step's input. Null when the connection closed meanwhile.
   */
  async run(
    first: Buffer | undefined,
    username: string | undefined,
    reauthenticating: User | null,
  ): Promise<AuthOutcome | null> {
    const peer = this.peer
    const method = this.method
    const exchange = this.factory({
      method,
      clientId: peer.clientId,
      username,
      reauthenticating,
      info: peer.info,
      runtime: this.runtime,
    })
    const auth: Exchange = { exchange, waiter: null, timer: null }
    this.current = auth
    try {
      let data = first
      for (;;) {
        const result = await exchange.step(data)
        if (peer.closed || this.current !== auth) return null
        if (result.status !== 'continue') return result
        const next = new Promise<Buffer | undefined>((resolve) => {
          auth.waiter = resolve
        })
        auth.timer = setTimeout(
          guarded(peer, () => peer.close('authentication timed out')),
          this.timeoutMs,
        )
        auth.timer.unref?.()
        peer.sendAuth(
          {
            cmd: 'auth',
            reasonCode: ReasonCode.ContinueAuthentication,
            properties: { authenticationMethod: method, authenticationData: Buffer.from(result.data) },
          } as AuthPacket,
          true,
        )
        data = await next
        if (peer.closed || this.current !== auth) return null
      }
    } finally {
      if (auth.timer) clearTimeout(auth.timer)
      if (this.current === auth) this.current = null
    }
  }

  /** An AUTH packet from the client: the next step of an exchange, or a re-authentication request. */
  onAuth(packet: AuthPacket): void {
    const peer = this.peer
    const rc = packet.reasonCode ?? 0
    if (packet.properties?.authenticationMethod !== this.method) {
      // MQTT 5 section 4.12: AUTH with another method than CONNECT's.
      peer.protocolViolation(new ProtocolError('AUTH with an authentication method not used at CONNECT'))
      return
    }
    const data = packet.properties?.authenticationData
    const auth = this.current
    if (rc === ReasonCode.ContinueAuthentication && auth?.waiter) {
      const resolve = auth.waiter
      auth.waiter = null
      if (auth.timer) clearTimeout(auth.timer)
      auth.timer = null
      resolve(data)
      return
    }
    if (rc === ReasonCode.ReAuthenticate && auth === null && peer.connected) {
      settle(peer, this.reauthenticate(data), () => {})
      return
    }
    peer.protocolViolation(new ProtocolError(`unexpected AUTH 0x${rc.toString(16)}`))
  }

  /** Re-authentication (MQTT 5 section 4.12.1): same method; success keeps the connection, failure ends it. */
  private async reauthenticate(data: Buffer | undefined): Promise<void> {
    const peer = this.peer
    const current = peer.user
    let result: AuthOutcome | null
    try {
      result = await this.run(data, current?.username, current)
    } catch (err) {
      this.logger.warn({ err }, 'mqtt: re-authentication failed')
      result = { status: 'failure', reason: 'authentication error' }
    }
    if (result === null || !peer.connected) return
    if (result.status === 'success' && result.user.username === peer.user?.username) {
      peer.reauthenticated(result.user)
      const properties: AuthPacket['properties'] = { authenticationMethod: this.method }
      if (result.data !== undefined) properties.authenticationData = Buffer.from(result.data)
      peer.sendAuth({ cmd: 'auth', reasonCode: 0, properties } as AuthPacket, false)
      return
    }
    const reason = result.status === 'failure' ? (result.reason ?? 'authentication failed') : 'another user'
    // 0x86 is not a DISCONNECT reason code: re-authentication failures are "not authorized".
    const rc = result.status === 'failure' ? result.reasonCode : undefined
    peer.reauthenticationFailed(
      rc === ReasonCode.BadAuthenticationMethod ? rc : ReasonCode.NotAuthorized,
      reason,
    )
  }

  /**
   * The connection closed: an exchange waiting for the client's next step would wait (and hold its
   * timeout) for nothing; waking it lets `run` see the closed connection and clear the timer.
   */
  abort(): void {
    this.current?.waiter?.(undefined)
  }
}
