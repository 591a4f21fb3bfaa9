/**
 * How a resource write becomes a storage write: its options and meta, and storage or codec failures as
 * ResourceErrors. Shared by tables and the built-in topics resource.
 */
import { QueryError } from '@proj/query'
import type { WriteOptions } from '@proj/storage'
import { ResourceError } from './errors.js'
import { PublishAttachment } from './publish-attachment.js'
import type { RequestContext } from './types.js'

/** Maps storage and codec failures to ResourceError codes; anything else is rethrown as is. */
export function toResourceError(error: unknown): unknown {
  if (error instanceof ResourceError || !(error instanceof Error)) return error
  if (error instanceof QueryError) {
    return new ResourceError('INVALID', error.message, {
      cause: error,
      details: { code: error.code, position: error.position, condition: error.condition },
    })
  }
  const code = (error as { code?: unknown }).code
  switch (code) {
    case 'STORAGE_CONFLICT':
      return new ResourceError('CONFLICT', error.message, { cause: error })
    case 'STORAGE_KEY_TOO_LONG':
      return new ResourceError('KEY_TOO_LONG', error.message, {
        cause: error,
        details: { maxBytes: (error as { maxBytes?: unknown }).maxBytes },
      })
    case 'STORAGE_INVALID_VALUE':
    case 'STORAGE_INVALID_KEY':
    case 'CODEC_DECODE_FAILED':
    case 'CODEC_ENCODE_FAILED':
      return new ResourceError('INVALID', error.message, { cause: error })
    case 'CODEC_UNSUPPORTED_MEDIA_TYPE':
      return new ResourceError('UNSUPPORTED_MEDIA_TYPE', error.message, { cause: error })
    case 'STORAGE_CLOSED':
      return new ResourceError('CLOSED', error.message, { cause: error })
    case 'STORAGE_UNAVAILABLE': {
      // a cluster says when to try again (HTTP Retry-After)
      const retryAfterMs = (error as { retryAfterMs?: unknown }).retryAfterMs
      return new ResourceError('UNAVAILABLE', error.message, {
        cause: error,
        ...(typeof retryAfterMs === 'number' ? { details: { retryAfterMs } } : {}),
      })
    }
    default:
      return error
  }
}

/** For `.catch(rethrow)` / `.then(ok, rethrow)`: a failed storage write as a ResourceError. */
export function rethrow(error: unknown): never {
  throw toResourceError(error)
}

/** Storage options of a logged publish; its attachment (the publisher's bytes) travels to its live event. */
export function writeOf(
  user: string | undefined,
  meta: Record<string, unknown>,
  attachment: PublishAttachment = new PublishAttachment(),
): WriteOptions {
  const options: WriteOptions = { meta, attachment }
  if (user !== undefined) options.user = user
  return options
}

/** Storage options of a REST-style write: the user, `ifVersion`, and the client id as meta. */
export function writeOptions(ctx: RequestContext, ifVersion?: number) {
  const options: { user?: string; ifVersion?: number; meta?: Record<string, unknown> } = {}
  if (ctx.user) options.user = ctx.user.username
  if (ifVersion !== undefined) options.ifVersion = ifVersion
  if (ctx.clientId !== undefined) options.meta = { clientId: ctx.clientId }
  return options
}

/** Meta persisted with a logged publish: the publisher's meta plus QoS and client id. */
export function storageMeta(
  message: { qos: number; meta?: Record<string, unknown> },
  ctx: RequestContext,
): Record<string, unknown> {
  const meta = message.meta
  if (meta && meta.qos === message.qos && (ctx.clientId === undefined || meta.clientId !== undefined))
    return meta
  const out: Record<string, unknown> = { ...meta, qos: message.qos }
  if (out.clientId === undefined && ctx.clientId !== undefined) out.clientId = ctx.clientId
  return out
}
