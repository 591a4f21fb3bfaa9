/** Writing responses: bodies with Content-Length, and the JSON error body every failure gets. */
import type { ServerResponse } from 'node:http'
import { type ErrorBody, errorBody, retryAfterSeconds } from './errors.js'

export function send(
  res: ServerResponse,
  status: number,
  headers: Record<string, string | number>,
  body?: Uint8Array | string,
): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value)
  if (bytes !== undefined) res.setHeader('Content-Length', bytes.byteLength)
  else if (status !== 204 && status !== 304) res.setHeader('Content-Length', 0)
  res.writeHead(status)
  res.end(bytes)
}

/**
 * Sends `{ error, message, status }` as JSON with the status from the error-code table; a 401 carries
 * the `WWW-Authenticate` value `challenge` gives (default: Basic and Bearer).
 */
export function sendError(
  res: ServerResponse,
  err: unknown,
  preconditioned = false,
  challenge?: () => string,
): ErrorBody {
  const body = errorBody(err, preconditioned)
  const headers: Record<string, string> = { 'Content-Type': 'application/json; charset=utf-8' }
  if (body.status === 401)
    headers['WWW-Authenticate'] = challenge?.() ?? 'Basic realm="proj", Bearer realm="proj"'
  const retryAfter = retryAfterSeconds(body)
  if (retryAfter !== undefined) headers['Retry-After'] = String(retryAfter)
  if (body.status === 405 && !res.hasHeader('Allow'))
    headers.Allow = 'GET, HEAD, PUT, PATCH, POST, DELETE, OPTIONS'
  send(res, body.status, headers, JSON.stringify(body))
  return body
}
