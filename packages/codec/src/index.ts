/**
 * @proj/codec: JSON, CBOR and MessagePack encoding with HTTP-style media-type negotiation.
 * @packageDocumentation
 */
export { negotiate } from './accept-header.js'
export { decode, encode } from './codec.js'
export type { Detected } from './detect.js'
export { detect } from './detect.js'
export type { CodecErrorCode } from './errors.js'
export { CodecError } from './errors.js'
export type { CanonicalMediaType, ContentType } from './media-type.js'
export {
  isSupportedMediaType,
  MEDIA_TYPES,
  normalizeMediaType,
  parseContentType,
  SUPPORTED_MEDIA_TYPES,
} from './media-type.js'
