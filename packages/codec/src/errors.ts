/** Stable error codes of `@proj/codec`; transports map them to HTTP statuses and MQTT reason codes. */
export type CodecErrorCode = 'CODEC_UNSUPPORTED_MEDIA_TYPE' | 'CODEC_DECODE_FAILED' | 'CODEC_ENCODE_FAILED'

/**
 * Thrown by every throwing function of this package.
 *
 * @example
 * try { decode(bytes, 'application/cbor') } catch (err) {
 *   if (err instanceof CodecError && err.code === 'CODEC_DECODE_FAILED') reply(400)
 * }
 */
export class CodecError extends Error {
  override readonly name = 'CodecError'
  readonly code: CodecErrorCode
  /** The media type being encoded or decoded (as given by the caller, lower-cased when parsed). */
  readonly mediaType: string

  constructor(code: CodecErrorCode, mediaType: string, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
    this.mediaType = mediaType
  }
}
