/**
 * Content negotiation for HTTP bodies (RFC 9110 sections 8.3 and 12.5.1) on top of @proj/codec:
 * JSON, CBOR and MessagePack for everything, CSV (RFC 4180) for lists, and a short query-parameter
 * fallback (`?accept=cbor`) for browsers, whose EventSource and WebSocket cannot set Accept.
 */
import {
  decode,
  detect,
  encode,
  MEDIA_TYPES,
  negotiate,
  normalizeMediaType,
  parseContentType,
} from '@proj/codec'
import { errorCode, HttpError } from './errors.js'

export const JSON_TYPE = MEDIA_TYPES.json
const CBOR_TYPE = MEDIA_TYPES.cbor
const MSGPACK_TYPE = MEDIA_TYPES.msgpack
/** The one format here that @proj/codec does not know: lists only. */
export const CSV_TYPE = 'text/csv'
const EVENT_STREAM_TYPE = 'text/event-stream'

/**
 * Structured formats, in server preference order. `application/x-msgpack` is not listed: negotiate()
 * matches it as an alias of `application/msgpack`, and chooseResponseType answers with the name asked for.
 */
const STRUCTURED_TYPES: readonly string[] = [JSON_TYPE, CBOR_TYPE, MSGPACK_TYPE]
const LIST_TYPES: readonly string[] = [...STRUCTURED_TYPES, CSV_TYPE]

const SHORT_NAMES: Readonly<Record<string, string>> = {
  json: JSON_TYPE,
  cbor: CBOR_TYPE,
  msgpack: MSGPACK_TYPE,
  messagepack: MSGPACK_TYPE,
  'x-msgpack': 'application/x-msgpack',
  'vnd.msgpack': 'application/vnd.msgpack',
  csv: CSV_TYPE,
}

/** `application/json` and any `+json` structured suffix (RFC 6839), e.g. merge-patch+json. */
export function isJsonType(mediaType: string): boolean {
  const base = mediaType.split(';', 1)[0]!.trim().toLowerCase()
  return base === JSON_TYPE || base.endsWith('+json')
}

/** Resolves `?accept=` (a short name or a media type) to an Accept header value. */
export function acceptFromQuery(value: string | null | undefined): string | undefined {
  if (value === null || value === undefined || value === '') return undefined
  return SHORT_NAMES[value.toLowerCase()] ?? value
}

/**
 * The response media type for an Accept value (the query fallback wins when present); throws
 * NOT_ACCEPTABLE (406). `csv` allows text/csv (lists only).
 */
export function chooseResponseType(accept: string | undefined, options: { csv?: boolean } = {}): string {
  const available = options.csv ? LIST_TYPES : STRUCTURED_TYPES
  const chosen = negotiate(accept, available)
  if (chosen === undefined) {
    throw new HttpError('NOT_ACCEPTABLE', `none of ${available.join(', ')} is acceptable`)
  }
  // Answer a client that asked for another MessagePack name (the registered vnd. one, the legacy x- one)
  // with the name it asked for.
  if (chosen === MSGPACK_TYPE && accept !== undefined && !/application\/msgpack/i.test(accept)) {
    if (/application\/vnd\.msgpack/i.test(accept)) return 'application/vnd.msgpack'
    if (/application\/x-msgpack/i.test(accept)) return 'application/x-msgpack'
  }
  return chosen
}

/**
 * Whether a request asks for Server-Sent Events: its Accept names `text/event-stream` itself (a
 * wildcard is not enough) with a q above 0 (q=0 means "not acceptable", RFC 9110 section 12.4.2).
 */
export function wantsEventStream(accept: string | undefined): boolean {
  return (
    accept !== undefined &&
    /text\/event-stream/i.test(accept) &&
    negotiate(accept, [EVENT_STREAM_TYPE]) !== undefined
  )
}

/** Encodes a value for a structured media type (JSON, CBOR, MessagePack). */
export function encodeValue(value: unknown, mediaType: string): Uint8Array {
  return encode(value, isJsonType(mediaType) ? JSON_TYPE : mediaType)
}

/**
 * Decodes a request body by its Content-Type. No Content-Type: JSON when the bytes are JSON (as for
 * untyped MQTT payloads), else UNSUPPORTED_MEDIA_TYPE. Malformed bytes are INVALID (400).
 */
export function decodeBody(body: Uint8Array, contentType: string | undefined): unknown {
  if (contentType === undefined || contentType.trim() === '') {
    if (body.length === 0) return undefined
    const detected = detect(body)
    if (detected.mediaType !== JSON_TYPE) {
      throw new HttpError('UNSUPPORTED_MEDIA_TYPE', 'request body has no Content-Type and is not JSON')
    }
    return detected.value
  }
  let mediaType: string
  try {
    mediaType = parseContentType(contentType).mediaType
  } catch (cause) {
    throw new HttpError('UNSUPPORTED_MEDIA_TYPE', `malformed Content-Type '${contentType}'`, { cause })
  }
  const json = isJsonType(mediaType)
  const type = json ? JSON_TYPE : normalizeMediaType(mediaType)
  if (type === undefined) throw new HttpError('UNSUPPORTED_MEDIA_TYPE', `cannot read '${mediaType}' bodies`)
  try {
    // The whole Content-Type goes to the codec, so a charset parameter is honoured.
    return decode(body, json && mediaType !== JSON_TYPE ? JSON_TYPE : contentType)
  } catch (cause) {
    if (errorCode(cause) === 'CODEC_UNSUPPORTED_MEDIA_TYPE') {
      throw new HttpError('UNSUPPORTED_MEDIA_TYPE', (cause as Error).message, { cause })
    }
    throw new HttpError('INVALID', `request body is not valid ${type}`, { cause })
  }
}

function csvCell(value: unknown): string {
  if (value === undefined || value === null) return ''
  let text: string
  if (typeof value === 'string') text = value
  else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    text = String(value)
  else if (value instanceof Date) text = value.toISOString()
  else if (value instanceof Uint8Array) text = Buffer.from(value).toString('base64')
  else text = JSON.stringify(value)
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text
}

/**
 * Renders records as RFC 4180 CSV with a header row: the `select`ed attributes when given, else
 * every attribute in order of first appearance. Nested values are written as JSON.
 */
export function toCsv(records: readonly unknown[], columns?: readonly string[]): string {
  let header = columns ? [...columns] : undefined
  if (!header) {
    const seen = new Set<string>()
    for (const record of records) {
      if (record && typeof record === 'object' && !Array.isArray(record)) {
        for (const key of Object.keys(record)) seen.add(key)
      }
    }
    header = [...seen]
  }
  const lines = [header.map(csvCell).join(',')]
  for (const record of records) {
    const row = record && typeof record === 'object' ? (record as Record<string, unknown>) : {}
    lines.push(header.map((key) => csvCell(Object.hasOwn(row, key) ? row[key] : undefined)).join(','))
  }
  return `${lines.join('\r\n')}\r\n`
}
