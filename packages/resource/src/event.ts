import { decode, detect } from '@proj/codec'
import type { Key, Timestamp } from '@proj/storage'
import type { EventMeta, EventType, ResourceEvent } from './types.js'

/** The value of an event made from publisher bytes that nobody has read yet. */
const NOT_DECODED: unique symbol = Symbol('not decoded')

/**
 * The runtime's ResourceEvent. Events are shared by every subscriber that receives them, so treat them
 * as read-only. When the event came from publisher bytes (`payload`), `value` is decoded lazily on first
 * read: a broker that forwards the same bytes never parses them. Read fields (or `toJSON()`); do not
 * spread an event (`value` is an accessor).
 */
export class RuntimeEvent implements ResourceEvent {
  type: EventType
  topic: string
  path: string
  id: Key
  contentType: string | undefined
  timestamp: Timestamp
  cursor: number
  user: string | undefined
  retained: boolean
  resumeCursor: number | undefined
  meta: EventMeta | undefined
  /** The publisher's original bytes, when the value came from a publish (delivered as-is to same-format subscribers). */
  payload: Uint8Array | undefined
  /** Client id of the publishing connection (for no-local when meta has none). */
  origin: string | undefined
  /** The value, or NOT_DECODED while it is still only the publisher's bytes. */
  #value: unknown
  /**
   * Encode cache: one format inline (most events are delivered in one), more in a map that then takes
   * the format's place. Two fields, not three, and no separate decoded flag: every QoS 0 message is an
   * event, and each field is 8 bytes of it.
   */
  #encType: string | Map<string, Uint8Array> | undefined = undefined
  #encBytes: Uint8Array | undefined = undefined

  constructor(
    type: EventType,
    topic: string,
    path: string,
    id: Key,
    timestamp: Timestamp,
    cursor: number,
    user: string | undefined,
    retained: boolean,
    meta: EventMeta | undefined,
  ) {
    this.type = type
    this.topic = topic
    this.path = path
    this.id = id
    this.contentType = undefined
    this.timestamp = timestamp
    this.cursor = cursor
    this.user = user
    this.retained = retained
    this.resumeCursor = undefined
    this.meta = meta
    this.payload = undefined
    this.origin = undefined
    this.#value = undefined
  }

  get value(): unknown {
    if (this.#value === NOT_DECODED) this.#value = decodeLoose(this.payload!, this.contentType)
    return this.#value
  }

  set value(value: unknown) {
    this.#value = value
  }

  /** Sets the publisher's bytes; the value is decoded from them on first read. */
  setPayload(payload: Uint8Array, contentType: string | undefined): this {
    this.payload = payload
    this.contentType = contentType
    this.#value = NOT_DECODED
    return this
  }

  /** @internal encode cache lookup */
  cached(mediaType: string): Uint8Array | undefined {
    const type = this.#encType
    if (type === mediaType) return this.#encBytes
    return typeof type === 'object' ? type.get(mediaType) : undefined
  }

  /** @internal encode cache store */
  cache(mediaType: string, bytes: Uint8Array): void {
    const type = this.#encType
    if (type === undefined) {
      this.#encType = mediaType
      this.#encBytes = bytes
    } else if (typeof type === 'object') {
      type.set(mediaType, bytes)
    } else {
      this.#encType = new Map([
        [type, this.#encBytes!],
        [mediaType, bytes],
      ])
      this.#encBytes = undefined
    }
  }

  /** A copy marked as a retained (current-value) event. */
  asRetained(): RuntimeEvent {
    const copy = new RuntimeEvent(
      this.type,
      this.topic,
      this.path,
      this.id,
      this.timestamp,
      this.cursor,
      this.user,
      true,
      this.meta,
    )
    copy.#value = this.#value
    copy.origin = this.origin
    if (this.payload) {
      copy.payload = this.payload
      copy.contentType = this.contentType
    }
    return copy
  }

  toJSON(): ResourceEvent {
    const json: ResourceEvent = {
      type: this.type,
      topic: this.topic,
      path: this.path,
      id: this.id,
      timestamp: this.timestamp,
      cursor: this.cursor,
      retained: this.retained,
    }
    if (this.type !== 'delete') json.value = this.value
    if (this.contentType !== undefined) json.contentType = this.contentType
    if (this.user !== undefined) json.user = this.user
    if (this.meta !== undefined) json.meta = this.meta
    return json
  }
}

/** Decodes publisher bytes for a topic no table claims: anything that does not decode stays raw bytes. */
export function decodeLoose(payload: Uint8Array, contentType: string | undefined): unknown {
  try {
    if (contentType) return decode(payload, contentType)
    return detect(payload).value
  } catch {
    return payload
  }
}
