import type { RuntimeEvent } from './event.js'

/**
 * What a logged publish hands storage with its write (`WriteOptions.attachment`) and finds again on the
 * write's live change event. It carries the bytes the record or message was decoded from, so subscribers
 * in the publisher's format get them unchanged instead of a re-encoding, and it holds the RuntimeEvent
 * made for the change, so the live feed and the publish result share one event (resource writes only
 * this object of its own, never storage's change event).
 */
export class PublishAttachment {
  /** The change's RuntimeEvent once made (`null`: the change concerns no resource). */
  event: RuntimeEvent | null | undefined = undefined

  constructor(
    readonly payload: Uint8Array | undefined = undefined,
    readonly contentType: string | undefined = undefined,
  ) {}

  /**
   * The attachment for storing `stored`, decoded from `payload`: only an object value (as before,
   * when the bytes were looked up by the stored object) carries them.
   */
  static of(
    stored: unknown,
    payload: Uint8Array | undefined,
    contentType: string | undefined,
  ): PublishAttachment {
    return payload && stored !== null && typeof stored === 'object'
      ? new PublishAttachment(payload, contentType)
      : new PublishAttachment()
  }
}
