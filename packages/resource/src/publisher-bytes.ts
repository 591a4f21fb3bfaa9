/**
 * The bytes a record or message was decoded from, handed to storage with the write
 * (`WriteOptions.attachment`) and found on its live change event, so subscribers in the publisher's
 * format get them unchanged instead of a re-encoding.
 */
export class PublisherBytes {
  constructor(
    readonly payload: Uint8Array,
    readonly contentType: string | undefined,
  ) {}

  /**
   * The attachment for storing `stored`, decoded from `payload`: only an object value (as before,
   * when the bytes were looked up by the stored object) carries them.
   */
  static of(
    stored: unknown,
    payload: Uint8Array | undefined,
    contentType: string | undefined,
  ): PublisherBytes | undefined {
    return payload && stored !== null && typeof stored === 'object'
      ? new PublisherBytes(payload, contentType)
      : undefined
  }
}
