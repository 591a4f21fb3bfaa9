/**
 * Cross-origin resource sharing (Fetch standard, "CORS protocol"): response headers for allowed
 * origins and the answer to preflight requests.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

export interface CorsOptions {
  /** Allowed origins (`https://app.example`), or `'*'` for any. */
  origins: string[] | '*'
  /** Send `Access-Control-Allow-Credentials: true` (the origin is then echoed, never `*`). */
  credentials?: boolean
  /** Preflight cache lifetime in seconds (default 600). */
  maxAge?: number
}

const ALLOW_METHODS = 'GET, HEAD, PUT, PATCH, POST, DELETE, OPTIONS'
const EXPOSE_HEADERS = 'ETag, Location, Link, Content-Type, Content-Length'

/** The origin to put in Access-Control-Allow-Origin, or undefined when this origin is not allowed. */
function allowedOrigin(cors: CorsOptions, origin: string | undefined): string | undefined {
  if (origin === undefined) return undefined
  if (cors.origins === '*') return cors.credentials ? origin : '*'
  return cors.origins.includes(origin) ? origin : undefined
}

/**
 * Origins besides the server's own whose pages may open streams (WebSocket upgrades, credentialed event
 * streams): `streamOrigins` when given, else the CORS origins when they are a list, else none. CORS `*`
 * alone does not open streams to every site: a stream carries the browser's ambient credentials.
 */
export function streamOriginsOf(
  cors: CorsOptions | undefined,
  streamOrigins: string[] | '*' | undefined,
): string[] | '*' {
  if (streamOrigins !== undefined) return streamOrigins
  return cors !== undefined && cors.origins !== '*' ? cors.origins : []
}

/**
 * Whether a stream may open given its Origin. Browsers send cached Basic credentials, cookies and client
 * certificates with a cross-site WebSocket handshake and apply no CORS check to it, so the server must
 * (cross-site WebSocket hijacking). Non-browser clients send no Origin; same-origin pages always pass;
 * other origins only when listed (or `'*'`).
 */
export function streamOriginAllowed(allowed: string[] | '*', req: IncomingMessage): boolean {
  const origin = req.headers.origin
  if (origin === undefined) return true
  if (allowed === '*' || allowed.includes(origin)) return true
  try {
    return new URL(origin).host === req.headers.host
  } catch {
    return false
  }
}

/**
 * Whether a request carries credentials the browser adds by itself (cookies, a cached `Authorization:
 * Basic`), which a foreign page could borrow. A bearer token (header or `?access_token=`) it had to hold.
 */
export function carriesAmbientCredentials(req: IncomingMessage): boolean {
  if (req.headers.cookie !== undefined) return true
  const authorization = req.headers.authorization
  return authorization !== undefined && /^\s*basic\b/i.test(authorization)
}

/** Adds the CORS response headers for an actual (non-preflight) request. */
export function applyCors(cors: CorsOptions | undefined, req: IncomingMessage, res: ServerResponse): void {
  if (!cors) return
  res.appendHeader('Vary', 'Origin')
  const allow = allowedOrigin(cors, req.headers.origin)
  if (allow === undefined) return
  res.setHeader('Access-Control-Allow-Origin', allow)
  if (cors.credentials) res.setHeader('Access-Control-Allow-Credentials', 'true')
  res.setHeader('Access-Control-Expose-Headers', EXPOSE_HEADERS)
}

/** True for an OPTIONS request that carries Access-Control-Request-Method. */
export function isPreflight(req: IncomingMessage): boolean {
  return req.method === 'OPTIONS' && typeof req.headers['access-control-request-method'] === 'string'
}

/** Answers a preflight: 204 with the allowed methods and headers, or 403 for a foreign origin. */
export function answerPreflight(
  cors: CorsOptions | undefined,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  const allow = cors ? allowedOrigin(cors, req.headers.origin) : undefined
  if (!cors || allow === undefined) {
    res.writeHead(403, { 'Content-Type': 'application/json', Vary: 'Origin' })
    res.end(JSON.stringify({ error: 'FORBIDDEN', message: 'origin not allowed', status: 403 }))
    return
  }
  const headers: Record<string, string> = {
    Vary: 'Origin, Access-Control-Request-Headers',
    'Access-Control-Allow-Origin': allow,
    'Access-Control-Allow-Methods': ALLOW_METHODS,
    'Access-Control-Max-Age': String(cors.maxAge ?? 600),
  }
  const requested = req.headers['access-control-request-headers']
  if (typeof requested === 'string' && requested !== '') headers['Access-Control-Allow-Headers'] = requested
  if (cors.credentials) headers['Access-Control-Allow-Credentials'] = 'true'
  res.writeHead(204, headers)
  res.end()
}
