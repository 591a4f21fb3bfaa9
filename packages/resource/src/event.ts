import { decode, detect } from '@proj/codec'
import type { Key, Timestamp } from '@proj/storage'
import type { EventMeta, EventType, ResourceEvent } from './types.js'

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
  #value: unknown
  #decoded: boolean
  /** Encode cache: the first format inline, more in a map (most events are delivered in one format). */
  #encType: string | undefined = undefined
  #encBytes: Uint8Array | undefined = undefined
  #encMore: Map<string, Uint8Array> | undefined = undefined

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
    this.#decoded = true
  }

  get value(): unknown {
    if (!this.#decoded) {
      this.#decoded = true
      this.#value = decodeLoose(this.payload!, this.contentType)
    }
    return this.#value
  }

  set value(value: unknown) {
    this.#value = value
    this.#decoded = true
  }

  /** Sets the publisher's bytes; the value is decoded from them on first read. */
  setPayload(payload: Uint8Array, contentType: string | undefined): this {
    this.payload = payload
    this.contentType = contentType
    this.#decoded = false
    return this
  }

  /** @internal encode cache lookup */
  cached(mediaType: string): Uint8Array | undefined {
    if (this.#encType === mediaType) return this.#encBytes
    return this.#encMore?.get(mediaType)
  }

  /** @internal encode cache store */
  cache(mediaType: string, bytes: Uint8Array): void {
    if (this.#encType === undefined) {
      this.#encType = mediaType
      this.#encBytes = bytes
    } else {
      ;(this.#encMore ??= new Map()).set(mediaType, bytes)
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
    if (this.#decoded) copy.value = this.#value
    copy.origin = this.origin
    if (this.payload) {
      copy.payload = this.payload
      copy.contentType = this.contentType
      if (!this.#decoded) copy.#decoded = false
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
