/**
 * Enhanced authentication (MQTT 5 section 4.12): the AUTH packet exchange, with pluggable methods.
 * A method is a factory; the broker makes one exchange per CONNECT (or re-authentication) and feeds it
 * the client's Authentication Data until it succeeds or fails.
 */

import type { ConnectionInfo } from './connection-info.js'
import type { Runtime, User } from './runtime.js'

/** What an authentication exchange knows about the connection. */
export interface AuthContext {
  /** The Authentication Method the client named. */
  method: string
  clientId: string
  /** CONNECT's User Name, when the client sent one. */
  username: string | undefined
  /** Re-authentication (AUTH 0x19 after CONNACK): the user the connection is authenticated as. */
  reauthenticating: User | null
  info: ConnectionInfo
  runtime: Runtime
}

/** One step's outcome: send more data (AUTH 0x18), accept as `user`, or refuse. */
export type AuthResult =
  | { status: 'continue'; data: Uint8Array }
  | { status: 'success'; user: User; data?: Uint8Array }
  | { status: 'failure'; reasonCode?: number; reason?: string }

/** One authentication exchange: `step` receives each Authentication Data from the client (first from CONNECT / AUTH 0x19). */
export interface AuthExchange {
  step(data: Buffer | undefined): Promise<AuthResult>
}

/**
 * A pluggable authentication method, e.g. `{ 'SCRAM-SHA-256': createScramSha256() }` in
 * `BrokerOptions.authenticationMethods`.
 *
 * @example
 * ```ts
 * const token: AuthMethodFactory = ({ runtime }) => ({
 *   async step(data) {
 *     const user = data && (await runtime.verifyToken(data.toString()))
 *     return user ? { status: 'success', user } : { status: 'failure', reasonCode: 0x87 }
 *   },
 * })
 * ```
 */
export type AuthMethodFactory = (context: AuthContext) => AuthExchange
