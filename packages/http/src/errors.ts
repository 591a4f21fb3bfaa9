/**
 * Errors raised by @proj/http itself, and the one table that maps error codes (ours, the resource
 * runtime's `ResourceError` codes, the codec's) to HTTP statuses. Domain errors carry no status; only
 * this transport decides what a code means on the wire.
 */

/** An error this package raises while parsing or negotiating a request. */
export class HttpError extends Error {
  override name = 'HttpError'
  readonly code: string
  /** Machine-readable details for the error body (e.g. a query error's position and condition). */
  readonly details: Record<string, unknown> | undefined
  constructor(code: string, message: string, options?: ErrorOptions & { details?: Record<string, unknown> }) {
    super(message, options)
    this.code = code
    this.details = options?.details
  }
}

/** Error codes to HTTP statuses. Unknown codes are 500. */
export const STATUS_BY_CODE: Readonly<Record<string, number>> = Object.freeze({
  INVALID: 400,
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  NOT_ACCEPTABLE: 406,
  CONFLICT: 409,
  PRECONDITION_FAILED: 412,
  TOO_LARGE: 413,
  // The id came from the request's path: the URI names something too long to store (RFC 9110 §15.5.15).
  KEY_TOO_LONG: 414,
  UNSUPPORTED_MEDIA_TYPE: 415,
  TOO_MANY_REQUESTS: 429,
  QUOTA_EXCEEDED: 429,
  NOT_IMPLEMENTED: 501,
  UNAVAILABLE: 503,
  CLOSED: 503,
})

/** The JSON error body every failed request gets. */
export interface ErrorBody {
  error: string
  message: string
  status: number
  /** Machine-readable details from the runtime (e.g. the attribute that failed validation). */
  details?: Record<string, unknown>
}

/** Reads a string `code` from anything thrown (ResourceError, CodecError, HttpError, ...). */
export function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code
    if (typeof code === 'string') return code
  }
  return undefined
}

/**
 * The HTTP status for an error code. Package-prefixed codes (`CODEC_UNSUPPORTED_MEDIA_TYPE`) are
 * matched by their suffix; other codec failures are malformed request bodies (400).
 * `preconditioned` turns CONFLICT into 412 when the request carried If-Match / If-None-Match.
 */
export function statusForCode(code: string | undefined, preconditioned = false): number {
  if (code === undefined) return 500
  if (code === 'CONFLICT' && preconditioned) return 412
  const direct = STATUS_BY_CODE[code]
  if (direct !== undefined) return direct
  for (const [known, status] of Object.entries(STATUS_BY_CODE)) {
    if (code.endsWith(`_${known}`)) return status
  }
  if (code.startsWith('CODEC_')) return 400
  // A query that does not parse or does not fit the table's types (@proj/query's QueryError).
  if (code.startsWith('QUERY_')) return 400
  return 500
}

/** Builds the body for an error; 5xx messages are generic so internals do not leak. */
export function errorBody(err: unknown, preconditioned = false): ErrorBody {
  const code = errorCode(err)
  const status = statusForCode(code, preconditioned)
  if (status >= 500 && status !== 501 && status !== 503) {
    return { error: 'INTERNAL', message: 'internal server error', status }
  }
  const message = err instanceof Error ? err.message : String(err)
  const body: ErrorBody = { error: code ?? 'INTERNAL', message, status }
  const details = (err as { details?: unknown } | null)?.details
  if (details && typeof details === 'object') body.details = details as Record<string, unknown>
  return body
}

/** Retry-After (RFC 9110 section 10.2.3) for a 429 or 503 whose details carry `retryAfterMs`: whole seconds, at least 1. */
export function retryAfterSeconds(body: ErrorBody): number | undefined {
  const ms = body.details?.retryAfterMs
  if ((body.status !== 429 && body.status !== 503) || typeof ms !== 'number' || !(ms > 0)) return undefined
  return Math.max(1, Math.ceil(ms / 1000))
}
