import { CodecError } from './errors.js'

/** Canonical names of the media types this package encodes and decodes. */
export const MEDIA_TYPES = Object.freeze({
  json: 'application/json',
  cbor: 'application/cbor',
  msgpack: 'application/msgpack',
  text: 'text/plain',
  binary: 'application/octet-stream',
} as const)

/** A canonical media type (aliases resolved). */
export type CanonicalMediaType = (typeof MEDIA_TYPES)[keyof typeof MEDIA_TYPES]

/**
 * Every media type accepted by `encode`/`decode`, in server-preference order (JSON first), aliases
 * included (`application/vnd.msgpack`, the IANA-registered name, and `application/x-msgpack` are aliases of
 * `application/msgpack`).
 */
export const SUPPORTED_MEDIA_TYPES: readonly string[] = Object.freeze([
  'application/json',
  'application/cbor',
  'application/msgpack',
  'application/vnd.msgpack',
  'application/x-msgpack',
  'text/plain',
  'application/octet-stream',
])

const CANONICAL: ReadonlyMap<string, CanonicalMediaType> = new Map<string, CanonicalMediaType>([
  ['application/json', MEDIA_TYPES.json],
  ['application/cbor', MEDIA_TYPES.cbor],
  ['application/msgpack', MEDIA_TYPES.msgpack],
  ['application/vnd.msgpack', MEDIA_TYPES.msgpack],
  ['application/x-msgpack', MEDIA_TYPES.msgpack],
  ['text/plain', MEDIA_TYPES.text],
  ['application/octet-stream', MEDIA_TYPES.binary],
])

/** Result of {@link parseContentType}. */
export interface ContentType {
  /** `type/subtype`, lower-cased. */
  mediaType: string
  /** Parameters by lower-cased name; values unquoted (`charset` lower-cased, others as sent). */
  parameters: Record<string, string>
}

// RFC 9110 §5.6.2 tchar
const TCHAR = new Uint8Array(128)
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TCHAR[c.charCodeAt(0)] = 1
}
const isTchar = (c: number): boolean => c < 128 && TCHAR[c] === 1
const isOws = (c: number): boolean => c === 32 || c === 9

/** Reads a token at `pos`; returns the end index (== pos when there is none). */
function tokenEnd(s: string, pos: number): number {
  while (pos < s.length && isTchar(s.charCodeAt(pos))) pos++
  return pos
}

function skipOws(s: string, pos: number): number {
  while (pos < s.length && isOws(s.charCodeAt(pos))) pos++
  return pos
}

/**
 * Parses `type/subtype *(OWS ";" OWS name=value)` starting at `pos` (RFC 9110 §8.3.1, §5.6.6) and
 * stops at the end of the string or at a top-level `,` (so that Accept lists can reuse it).
 * Returns undefined when the text is malformed.
 * @internal
 */
export function parseMediaTypeAt(
  s: string,
  pos: number,
): { type: string; subtype: string; parameters: Record<string, string>; end: number } | undefined {
  pos = skipOws(s, pos)
  const typeEnd = tokenEnd(s, pos)
  if (typeEnd === pos || s.charCodeAt(typeEnd) !== 47 /* / */) return undefined
  const subStart = typeEnd + 1
  const subEnd = tokenEnd(s, subStart)
  if (subEnd === subStart) return undefined
  const type = s.slice(pos, typeEnd).toLowerCase()
  const subtype = s.slice(subStart, subEnd).toLowerCase()
  const parameters: Record<string, string> = {}
  pos = skipOws(s, subEnd)
  while (pos < s.length && s.charCodeAt(pos) === 59 /* ; */) {
    pos = skipOws(s, pos + 1)
    // RFC 9110 allows empty parameters ("text/plain;;charset=utf-8") through the list syntax.
    if (pos >= s.length || s.charCodeAt(pos) === 59 || s.charCodeAt(pos) === 44) continue
    const nameEnd = tokenEnd(s, pos)
    if (nameEnd === pos || s.charCodeAt(nameEnd) !== 61 /* = */) return undefined
    const name = s.slice(pos, nameEnd).toLowerCase()
    pos = nameEnd + 1
    let value: string
    if (s.charCodeAt(pos) === 34 /* " */) {
      value = ''
      pos++
      for (;;) {
        if (pos >= s.length) return undefined
        const c = s.charCodeAt(pos)
        if (c === 34) {
          pos++
          break
        }
        if (c === 92 /* \ */) {
          if (pos + 1 >= s.length) return undefined
          value += s[pos + 1]
          pos += 2
        } else {
          value += s[pos]
          pos++
        }
      }
    } else {
      const valueEnd = tokenEnd(s, pos)
      if (valueEnd === pos) return undefined
      value = s.slice(pos, valueEnd)
      pos = valueEnd
    }
    // The first occurrence wins; charset values are case-insensitive (RFC 9110 §8.3.2).
    if (!Object.hasOwn(parameters, name)) parameters[name] = name === 'charset' ? value.toLowerCase() : value
    pos = skipOws(s, pos)
  }
  if (pos < s.length && s.charCodeAt(pos) !== 44 /* , */) return undefined
  return { type, subtype, parameters, end: pos }
}

/**
 * Parses a `Content-Type` value (RFC 9110 §8.3): lower-cases `type/subtype` and parameter names,
 * unquotes quoted-string values. Throws a {@link CodecError} (`CODEC_UNSUPPORTED_MEDIA_TYPE`) when the
 * value is not a media type at all.
 *
 * @example
 * parseContentType('Application/JSON; charset="UTF-8"')
 * // { mediaType: 'application/json', parameters: { charset: 'utf-8' } }
 */
export function parseContentType(header: string): ContentType {
  const parsed = parseMediaTypeAt(header, 0)
  if (parsed === undefined || parsed.end !== header.length) {
    throw new CodecError(
      'CODEC_UNSUPPORTED_MEDIA_TYPE',
      header,
      `malformed media type: ${JSON.stringify(header)}`,
    )
  }
  return { mediaType: `${parsed.type}/${parsed.subtype}`, parameters: parsed.parameters }
}

/**
 * The canonical supported media type for a media type or Content-Type value (case-insensitive,
 * parameters dropped, aliases resolved), or undefined when it is malformed or unsupported.
 *
 * @example
 * normalizeMediaType('application/x-msgpack; foo=bar') // 'application/msgpack'
 * normalizeMediaType('text/html') // undefined
 */
export function normalizeMediaType(type: string): CanonicalMediaType | undefined {
  // Fast path: the exact strings senders use almost always.
  const direct = CANONICAL.get(type)
  if (direct !== undefined) return direct
  const parsed = parseMediaTypeAt(type, 0)
  if (parsed === undefined || parsed.end !== type.length) return undefined
  return CANONICAL.get(`${parsed.type}/${parsed.subtype}`)
}

/**
 * Whether `encode`/`decode` handle this media type (parameters and case are ignored).
 *
 * @example
 * isSupportedMediaType('application/cbor') // true
 */
export function isSupportedMediaType(type: string): boolean {
  return normalizeMediaType(type) !== undefined
}
