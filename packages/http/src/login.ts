/**
 * The token endpoint (`POST /login`): credentials from Basic authorization or from a JSON, CBOR,
 * MessagePack or form body `{ username, password }`, answered with a bearer token.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Runtime } from '@proj/resource'
import { requestCredentials } from './auth.js'
import { readBody } from './body.js'
import { HttpError } from './errors.js'
import { chooseResponseType, decodeBody, encodeValue } from './media.js'
import { requestHeader } from './request-header.js'
import { send } from './respond.js'

export interface LoginOptions {
  maxBodySize: number
  /** Lifetime of the tokens issued (default: the runtime's). */
  tokenExpiresInMs: number | undefined
}

/** Authenticates the request's user and answers `{ token, tokenType: 'Bearer', username, role }`. */
export async function login(
  runtime: Runtime,
  req: IncomingMessage,
  res: ServerResponse,
  options: LoginOptions,
): Promise<void> {
  const credentials = requestCredentials(req, new URLSearchParams())
  let user = null
  if (credentials.scheme === 'basic') {
    user = await runtime.authenticate(credentials.username, credentials.password, req.socket.remoteAddress)
  } else {
    const bytes = await readBody(req, options.maxBodySize)
    const contentType = requestHeader(req, 'content-type')
    let body: unknown
    if (contentType?.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
      body = Object.fromEntries(new URLSearchParams(bytes.toString('utf8')))
    } else {
      body = decodeBody(bytes, contentType)
    }
    const { username, password } = (body ?? {}) as { username?: unknown; password?: unknown }
    if (typeof username !== 'string' || typeof password !== 'string') {
      throw new HttpError('INVALID', 'login needs a username and a password (body or Basic authorization)')
    }
    user = await runtime.authenticate(username, password, req.socket.remoteAddress)
  }
  if (!user) throw new HttpError('UNAUTHORIZED', 'invalid username or password')
  const type = chooseResponseType(requestHeader(req, 'accept'))
  const token = await runtime.issueToken(
    user,
    options.tokenExpiresInMs === undefined ? undefined : { expiresInMs: options.tokenExpiresInMs },
  )
  send(
    res,
    200,
    { 'Content-Type': type, 'Cache-Control': 'no-store' },
    encodeValue({ token, tokenType: 'Bearer', username: user.username, role: user.role }, type),
  )
}
