/**
 * Credentials from a request: `Authorization: Basic` (RFC 7617), `Authorization: Bearer` (RFC 6750
 * section 2.1) and, for browsers whose EventSource and WebSocket cannot set headers, the
 * `access_token` query parameter (RFC 6750 section 2.3). The runtime checks them.
 */
import type { IncomingMessage } from 'node:http'
import type { Runtime, User } from '@proj/resource'
import { HttpError } from './errors.js'

export type Credentials =
  | { scheme: 'basic'; username: string; password: string }
  | { scheme: 'bearer'; token: string }
  | { scheme: 'none' }

/** Parses an Authorization header value; throws INVALID for a malformed one. */
export function parseAuthorization(header: string | undefined): Credentials {
  if (header === undefined || header.trim() === '') return { scheme: 'none' }
  const space = header.indexOf(' ')
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase()
  const param = space < 0 ? '' : header.slice(space + 1).trim()
  if (scheme === 'basic') {
    const decoded = Buffer.from(param, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (param === '' || colon < 0) throw new HttpError('INVALID', 'malformed Basic credentials')
    return { scheme: 'basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
  }
  if (scheme === 'bearer') {
    if (param === '') throw new HttpError('INVALID', 'malformed Bearer credentials')
    return { scheme: 'bearer', token: param }
  }
  throw new HttpError('UNAUTHORIZED', `unsupported authorization scheme '${scheme}'`)
}

/**
 * The `WWW-Authenticate` value of a 401 (RFC 9110 section 11.6.1). A request that came with a bearer token
 * (header or `?access_token=`) gets only the Bearer challenge with `invalid_token` (RFC 6750 section 3.1), and
 * a login with a form or JSON body only a Bearer one: a browser answers a Basic challenge to `fetch()` with
 * its own password dialog (a headless one leaves the request hanging), so a page that signs in with a
 * form and holds a token must never get one. Requests with Basic credentials or none get both.
 */
export function authChallenge(req: IncomingMessage, login: boolean): string {
  const header = (req.headers.authorization ?? '').trimStart().toLowerCase()
  const withToken =
    header.startsWith('bearer') ||
    (header === '' && new URL(req.url ?? '/', 'http://localhost').searchParams.has('access_token'))
  if (withToken) return 'Bearer realm="proj", error="invalid_token"'
  if (login && !header.startsWith('basic')) return 'Bearer realm="proj"'
  return 'Basic realm="proj", Bearer realm="proj"'
}

/** Credentials of a request: the Authorization header first, else `?access_token=`. */
export function requestCredentials(req: IncomingMessage, query: URLSearchParams): Credentials {
  const fromHeader = parseAuthorization(req.headers.authorization)
  if (fromHeader.scheme !== 'none') return fromHeader
  const token = query.get('access_token')
  if (token) return { scheme: 'bearer', token }
  return { scheme: 'none' }
}

/**
 * The user for these credentials: checked by the runtime; none means the runtime's anonymous user
 * (or null when anonymous access is off, and then the runtime's permission checks say no).
 * Wrong credentials are UNAUTHORIZED, never silently anonymous. `source` is the client's address, which
 * the runtime's back-off after failed passwords counts against (TOO_MANY_REQUESTS, then 429).
 */
export async function resolveUser(
  runtime: Runtime,
  credentials: Credentials,
  source: string | undefined,
): Promise<User | null> {
  switch (credentials.scheme) {
    case 'none':
      return runtime.anonymous()
    case 'basic': {
      const user = await runtime.authenticate(credentials.username, credentials.password, source)
      if (!user) throw new HttpError('UNAUTHORIZED', 'invalid username or password')
      return user
    }
    case 'bearer': {
      const user = await runtime.verifyToken(credentials.token)
      if (!user) throw new HttpError('UNAUTHORIZED', 'invalid or expired token')
      return user
    }
  }
}

/**
 * The user a request authenticates as (Authorization header or `?access_token=`), as REST sees it:
 * null or the anonymous user without credentials, HttpError UNAUTHORIZED for wrong ones. For routes
 * outside the record paths (an admin API) that want the same authentication.
 */
export function requestUser(
  runtime: Runtime,
  req: IncomingMessage,
  query?: URLSearchParams,
): Promise<User | null> {
  const params = query ?? new URL(req.url ?? '/', 'http://localhost').searchParams
  return resolveUser(runtime, requestCredentials(req, params), req.socket.remoteAddress)
}
