import { TextDecoder } from 'node:util'
import { cborCodec, decodeCbor, decodeMsgpack, msgpackCodec } from './binary-formats.js'
import { CodecError } from './errors.js'
import { parseJson, stringifyJson } from './json.js'
import { type CanonicalMediaType, MEDIA_TYPES, normalizeMediaType, parseContentType } from './media-type.js'

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false })
const textDecoders = new Map<string, TextDecoder>([
  ['utf-8', utf8],
  ['utf8', utf8],
  ['us-ascii', utf8],
])

/** Resolves a media type or Content-Type value to its canonical type plus its charset, if any. */
function resolve(mediaType: string): { type: CanonicalMediaType; charset: string | undefined } {
  if (mediaType.indexOf(';') === -1) {
    const direct = normalizeMediaType(mediaType)
    if (direct !== undefined) return { type: direct, charset: undefined }
  }
  // With parameters normalizeMediaType would parse the value only to drop them; parse it once here.
  let parsed: ReturnType<typeof parseContentType> | undefined
  try {
    parsed = parseContentType(mediaType)
  } catch {
    parsed = undefined
  }
  const type = parsed === undefined ? undefined : normalizeMediaType(parsed.mediaType)
  if (parsed === undefined || type === undefined) {
    throw new CodecError(
      'CODEC_UNSUPPORTED_MEDIA_TYPE',
      mediaType,
      `unsupported media type: ${JSON.stringify(mediaType)}`,
    )
  }
  return { type, charset: parsed.parameters.charset }
}

function textDecoderFor(charset: string | undefined, mediaType: string): TextDecoder {
  if (charset === undefined) return utf8
  let decoder = textDecoders.get(charset)
  if (decoder === undefined) {
    try {
      decoder = new TextDecoder(charset, { fatal: true })
    } catch (cause) {
      throw new CodecError('CODEC_UNSUPPORTED_MEDIA_TYPE', mediaType, `unsupported charset: ${charset}`, {
        cause,
      })
    }
    textDecoders.set(charset, decoder)
  }
  return decoder
}

function toText(value: unknown, mediaType: string): string {
  switch (typeof value) {
    case 'string':
      return value
    case 'number':
    case 'bigint':
    case 'boolean':
      return String(value)
    case 'undefined':
      return ''
    default:
      if (value === null) return ''
      if (value instanceof Date && !Number.isNaN(value.getTime())) return value.toISOString()
      throw new CodecError('CODEC_ENCODE_FAILED', mediaType, `text/plain cannot encode ${describe(value)}`)
  }
}

function toBytes(value: unknown, mediaType: string): Uint8Array {
  if (value instanceof Uint8Array) return value
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
  if (value instanceof ArrayBuffer) return new Uint8Array(value)
  if (typeof value === 'string') return Buffer.from(value, 'utf8')
  throw new CodecError(
    'CODEC_ENCODE_FAILED',
    mediaType,
    `application/octet-stream cannot encode ${describe(value)}`,
  )
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value !== 'object') return typeof value
  return value.constructor?.name ?? 'object'
}

function encodeAs(type: CanonicalMediaType, value: unknown, mediaType: string): Uint8Array {
  switch (type) {
    case MEDIA_TYPES.json:
      return Buffer.from(stringifyJson(value), 'utf8')
    case MEDIA_TYPES.cbor:
      return cborCodec().encode(value)
    case MEDIA_TYPES.msgpack:
      return msgpackCodec().pack(value)
    case MEDIA_TYPES.text:
      return Buffer.from(toText(value, mediaType), 'utf8')
    case MEDIA_TYPES.binary:
      return toBytes(value, mediaType)
  }
}

/**
 * Encodes `value` as `mediaType` (a media type or a whole Content-Type value; aliases accepted).
 * Throws {@link CodecError}: `CODEC_UNSUPPORTED_MEDIA_TYPE` for an unknown type or charset,
 * `CODEC_ENCODE_FAILED` when the value cannot be represented (cycles, a bigint beyond 64 bits in
 * MessagePack, an object as text/plain, a non-binary value as application/octet-stream).
 * Byte arrays given for application/octet-stream are returned as they are, not copied.
 *
 * @example
 * const bytes = encode({ name: 'Rex', born: new Date() }, 'application/cbor')
 */
export function encode(value: unknown, mediaType: string): Uint8Array {
  const { type, charset } = resolve(mediaType)
  if (charset !== undefined && type === MEDIA_TYPES.text && charset !== 'utf-8' && charset !== 'utf8') {
    throw new CodecError(
      'CODEC_UNSUPPORTED_MEDIA_TYPE',
      mediaType,
      `text/plain is only encoded as utf-8, not ${charset}`,
    )
  }
  try {
    return encodeAs(type, value, mediaType)
  } catch (cause) {
    if (cause instanceof CodecError) throw cause
    throw new CodecError(
      'CODEC_ENCODE_FAILED',
      mediaType,
      `cannot encode ${describe(value)} as ${type}: ${(cause as Error).message}`,
      {
        cause,
      },
    )
  }
}

function decodeAs(
  type: CanonicalMediaType,
  bytes: Uint8Array,
  charset: string | undefined,
  mediaType: string,
): unknown {
  switch (type) {
    case MEDIA_TYPES.json:
      // JSON is UTF-8 (RFC 8259 §8.1); the strict decoder rejects malformed sequences and drops a BOM.
      return parseJson(utf8.decode(bytes))
    case MEDIA_TYPES.cbor:
      return decodeCbor(bytes)
    case MEDIA_TYPES.msgpack:
      return decodeMsgpack(bytes)
    case MEDIA_TYPES.text:
      return textDecoderFor(charset, mediaType).decode(bytes)
    case MEDIA_TYPES.binary:
      return bytes
  }
}

/**
 * Decodes `bytes` of `mediaType` (a media type or a whole Content-Type value; text/plain honours
 * `charset`). JSON, CBOR and MessagePack must hold exactly one value (no trailing bytes, not empty);
 * text/plain gives a string; application/octet-stream gives back `bytes` itself.
 * Throws {@link CodecError} with `CODEC_UNSUPPORTED_MEDIA_TYPE` or `CODEC_DECODE_FAILED`.
 *
 * @example
 * decode(new TextEncoder().encode('{"id":1}'), 'application/json') // { id: 1 }
 */
export function decode(bytes: Uint8Array, mediaType: string): unknown {
  const { type, charset } = resolve(mediaType)
  try {
    return decodeAs(type, bytes, charset, mediaType)
  } catch (cause) {
    if (cause instanceof CodecError) throw cause
    throw new CodecError(
      'CODEC_DECODE_FAILED',
      mediaType,
      `cannot decode ${type}: ${(cause as Error).message}`,
      { cause },
    )
  }
}
