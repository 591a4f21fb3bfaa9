import { TextDecoder } from 'node:util'
import { parseJson } from './json.js'
import { MEDIA_TYPES } from './media-type.js'

/** Result of {@link detect}. */
export interface Detected {
  mediaType: 'application/json' | 'application/octet-stream'
  /** The parsed JSON value, or the input bytes themselves (not copied). */
  value: unknown
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

const isJsonSpace = (c: number | undefined): boolean => c === 32 || c === 10 || c === 13 || c === 9

/**
 * Classifies an untyped payload: JSON when the bytes are one complete UTF-8 JSON value (any JSON
 * value: object, array, string, number, true, false, null), else the raw bytes as
 * application/octet-stream. Cheap for binary payloads: the first and last non-space bytes are checked
 * before anything is parsed. Never throws.
 *
 * @example
 * detect(Buffer.from('{"on":true}')) // { mediaType: 'application/json', value: { on: true } }
 * detect(Buffer.from([0xff, 0x00]))   // { mediaType: 'application/octet-stream', value: <the bytes> }
 */
export function detect(bytes: Uint8Array): Detected {
  let start = 0
  let end = bytes.length - 1
  // A UTF-8 BOM may precede JSON text (RFC 8259 §8.1 lets parsers ignore it).
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) start = 3
  while (start <= end && isJsonSpace(bytes[start])) start++
  while (end > start && isJsonSpace(bytes[end])) end--
  if (start <= end && looksLikeJson(bytes[start]!, bytes[end]!)) {
    try {
      return { mediaType: MEDIA_TYPES.json, value: parseJson(utf8.decode(bytes)) }
    } catch {
      // not JSON after all
    }
  }
  return { mediaType: MEDIA_TYPES.binary, value: bytes }
}

function looksLikeJson(first: number, last: number): boolean {
  switch (first) {
    case 0x7b /* { */:
      return last === 0x7d /* } */
    case 0x5b /* [ */:
      return last === 0x5d /* ] */
    case 0x22 /* " */:
      return last === 0x22
    case 0x74 /* t */:
    case 0x6e /* n */:
      return last === 0x65 /* e */ || last === 0x6c /* l */
    case 0x66 /* f */:
      return last === 0x65
    case 0x2d /* - */:
      return last >= 0x30 && last <= 0x39
    default:
      return first >= 0x30 && first <= 0x39 && last >= 0x30 && last <= 0x39
  }
}
