/**
 * Errors thrown by the resource runtime. Each carries a stable string `code`; transports map codes to
 * HTTP statuses and MQTT reason codes in one table of their own (no statuses here).
 */
export type ResourceErrorCode =
  /** The request or value is malformed or does not match the schema. */
  | 'INVALID'
  /** A record id or topic is longer than storage can keep as a key (details: `maxBytes`). */
  | 'KEY_TOO_LONG'
  /** No user and anonymous access is off, or the credentials are wrong. */
  | 'UNAUTHORIZED'
  /** The user's role does not allow this operation. */
  | 'FORBIDDEN'
  /** No resource at this path, or no record with this id. */
  | 'NOT_FOUND'
  /** `ifVersion` did not match the stored version, or the id already exists. */
  | 'CONFLICT'
  /** The payload exceeds a configured limit. */
  | 'TOO_LARGE'
  /** Too many failed attempts: back off for `details.retryAfterMs` (HTTP 429, MQTT 0x89). */
  | 'TOO_MANY_REQUESTS'
  /** The payload's media type cannot be decoded, or a subscriber's format cannot be encoded. */
  | 'UNSUPPORTED_MEDIA_TYPE'
  /** The resource does not implement this method (HTTP 405). */
  | 'METHOD_NOT_ALLOWED'
  /** The runtime was closed. */
  | 'CLOSED'
  /** The write could not be replicated in time (a cluster without quorum); it was never acknowledged. */
  | 'UNAVAILABLE'
  /** A schema.graphql file could not be loaded (see SchemaError). */
  | 'SCHEMA_INVALID'
  /** An application folder or resources module could not be loaded. */
  | 'APPLICATION_INVALID'

export interface ResourceErrorOptions extends ErrorOptions {
  /** Extra machine-readable details for an error body (e.g. the attribute path that failed). */
  details?: Record<string, unknown>
}

/** The one error class the runtime throws at transports; switch on `code`, never on the message. */
export class ResourceError extends Error {
  override name = 'ResourceError'
  readonly code: ResourceErrorCode
  readonly details: Record<string, unknown> | undefined

  constructor(code: ResourceErrorCode, message: string, options?: ResourceErrorOptions) {
    super(message, options)
    this.code = code
    this.details = options?.details
  }
}

/** A schema.graphql problem; the message starts with `file:line:column`. */
export class SchemaError extends ResourceError {
  override name = 'SchemaError'
  readonly file: string
  readonly line: number
  readonly column: number

  constructor(file: string, line: number, column: number, message: string, options?: ErrorOptions) {
    super('SCHEMA_INVALID', `${file}:${line}:${column}: ${message}`, {
      ...options,
      details: { file, line, column },
    })
    this.file = file
    this.line = line
    this.column = column
  }
}

export function isResourceError(error: unknown): error is ResourceError {
  return error instanceof ResourceError
}
