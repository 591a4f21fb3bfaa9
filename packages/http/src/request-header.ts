/** Reading request headers as one string. */
import type { IncomingMessage } from 'node:http'

/** A request header as one value; a repeated header is joined with `, ` (RFC 9110 section 5.3). */
export function requestHeader(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name]
  return Array.isArray(value) ? value.join(', ') : value
}
