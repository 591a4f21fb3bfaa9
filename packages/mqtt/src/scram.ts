/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) as an MQTT 5 enhanced authentication method, server side.
 * The client-first message arrives in CONNECT (or AUTH 0x19), the server-first goes out in AUTH 0x18,
 * the client-final comes back in AUTH 0x18, and the server-final rides on CONNACK (or AUTH 0x00).
 * Credentials come from `runtime.scramCredentials(username)`: StoredKey and ServerKey, never the password.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { AuthContext, AuthExchange, AuthMethodFactory, AuthResult } from './auth.js'
import { ReasonCode } from './errors.js'
import type { ScramCredential } from './runtime.js'

export interface ScramOptions {
  /** Iteration count announced for unknown users (so their absence does not show). Default 4096. */
  fakeIterations?: number
}

const BAD_CREDENTIALS: AuthResult = {
  status: 'failure',
  reasonCode: ReasonCode.BadUserNameOrPassword,
  reason: 'bad user name or password',
}

function fail(reason: string, reasonCode: number = ReasonCode.NotAuthorized): AuthResult {
  return { status: 'failure', reasonCode, reason }
}

/** RFC 5802 section 5.1: `=2C` and `=3D` escape ',' and '=' in a saslname; any other '=' is malformed. */
function decodeSaslName(s: string): string | undefined {
  if (/=(?!2C|3D)/.test(s)) return undefined
  return s.replace(/=2C/g, ',').replace(/=3D/g, '=')
}

function attributes(message: string): Map<string, string> | undefined {
  const out = new Map<string, string>()
  for (const part of message.split(',')) {
    if (part.length < 2 || part[1] !== '=') return undefined
    out.set(part[0]!, part.slice(2))
  }
  return out
}

const hmac = (key: Uint8Array, data: string) => createHmac('sha256', key).update(data).digest()

/**
 * The SCRAM-SHA-256 method for `BrokerOptions.authenticationMethods` (on by default).
 *
 * @example
 * ```ts
 * createBroker({ runtime, authenticationMethods: { 'SCRAM-SHA-256': createScramSha256() } })
 * ```
 */
export function createScramSha256(options: ScramOptions = {}): AuthMethodFactory {
  const fakeIterations = options.fakeIterations ?? 4096
  // Per-broker secret: the fake salt of an unknown user is stable, so probing does not reveal them.
  const secret = randomBytes(32)
  return (context: AuthContext): AuthExchange => new ScramExchange(context, secret, fakeIterations)
}

class ScramExchange implements AuthExchange {
  private stage = 0
  private gs2Header = ''
  private clientFirstBare = ''
  private serverFirst = ''
  private nonce = ''
  private username = ''
  private credential: ScramCredential | null = null

  constructor(
    private readonly context: AuthContext,
    private readonly secret: Buffer,
    private readonly fakeIterations: number,
  ) {}

  step(data: Buffer | undefined): Promise<AuthResult> {
    const stage = this.stage++
    if (data === undefined || data.length === 0) return Promise.resolve(fail('authentication data expected'))
    const text = data.toString('utf8')
    if (stage === 0) return this.clientFirst(text)
    if (stage === 1) return this.clientFinal(text)
    return Promise.resolve(fail('unexpected authentication data'))
  }

  private async clientFirst(message: string): Promise<AuthResult> {
    // gs2-header: channel-binding flag, authzid, then client-first-message-bare (RFC 5802 section 7).
    const first = message.indexOf(',')
    const second = first < 0 ? -1 : message.indexOf(',', first + 1)
    if (second < 0) return fail('malformed client-first message')
    const cbind = message.slice(0, first)
    if (cbind.startsWith('p=')) return fail('channel binding is not supported')
    if (cbind !== 'n' && cbind !== 'y') return fail('malformed client-first message')
    this.gs2Header = message.slice(0, second + 1)
    this.clientFirstBare = message.slice(second + 1)
    const attrs = this.clientFirstBare.startsWith('m=') ? undefined : attributes(this.clientFirstBare)
    const name = attrs?.get('n')
    const clientNonce = attrs?.get('r')
    if (name === undefined || clientNonce === undefined || clientNonce.length === 0)
      return fail('malformed client-first message')
    const username = decodeSaslName(name)
    if (username === undefined || username.length === 0) return fail('malformed user name')
    const authzid = message.slice(first + 1, second)
    if (authzid !== '' && authzid !== `a=${name}`) return fail('authorization identity is not supported')
    const connectName = this.context.username
    if (connectName !== undefined && connectName !== '' && connectName !== username)
      return fail('user name differs from CONNECT')
    const reauth = this.context.reauthenticating
    if (reauth !== null && reauth.username !== username) return fail('re-authentication as another user')
    this.username = username
    const lookup = this.context.runtime.scramCredentials
    if (lookup === undefined)
      return fail('the runtime has no SCRAM credentials', ReasonCode.BadAuthenticationMethod)
    this.credential = await lookup.call(this.context.runtime, username)
    const salt = this.credential?.salt ?? hmac(this.secret, username).subarray(0, 16)
    const iterations = this.credential?.iterations ?? this.fakeIterations
    this.nonce = clientNonce + randomBytes(18).toString('base64')
    this.serverFirst = `r=${this.nonce},s=${Buffer.from(salt).toString('base64')},i=${iterations}`
    return { status: 'continue', data: Buffer.from(this.serverFirst) }
  }

  private async clientFinal(message: string): Promise<AuthResult> {
    const proofAt = message.lastIndexOf(',p=')
    if (proofAt < 0) return fail('malformed client-final message')
    const withoutProof = message.slice(0, proofAt)
    const attrs = attributes(withoutProof)
    const proof = Buffer.from(message.slice(proofAt + 3), 'base64')
    if (attrs === undefined || proof.length !== 32) return fail('malformed client-final message')
    if (attrs.get('c') !== Buffer.from(this.gs2Header).toString('base64'))
      return fail('channel binding mismatch')
    if (attrs.get('r') !== this.nonce) return fail('nonce mismatch')
    const credential = this.credential
    // Unknown users and users without a SCRAM credential fail here, like a wrong password.
    if (credential === null) return BAD_CREDENTIALS
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`
    const clientSignature = hmac(credential.storedKey, authMessage)
    const clientKey = Buffer.alloc(32)
    for (let i = 0; i < 32; i++) clientKey[i] = proof[i]! ^ clientSignature[i]!
    const storedKey = createHash('sha256').update(clientKey).digest()
    const expected = Buffer.from(credential.storedKey)
    if (expected.length !== storedKey.length || !timingSafeEqual(expected, storedKey)) return BAD_CREDENTIALS
    const user = await this.context.runtime.findUser(this.username)
    if (user === null) return BAD_CREDENTIALS
    const serverSignature = hmac(credential.serverKey, authMessage)
    return { status: 'success', user, data: Buffer.from(`v=${serverSignature.toString('base64')}`) }
  }
}
