import { encode as encodeValue, normalizeMediaType } from '@proj/codec'
import type { ChangeEvent, Key } from '@proj/storage'
import { TOPICS_TABLE, type TopicRecord } from './builtin-topics.js'
import { RuntimeEvent } from './event.js'
import { fromStored } from './own-keys.js'
import { PublisherBytes } from './publisher-bytes.js'
import type { Resource } from './resource.js'
import type { Route } from './router.js'
import { toResourceError } from './storage-writes.js'
import type { EventMeta, ResourceEvent } from './types.js'

const EMPTY = new Uint8Array(0)

/**
 * Committed storage changes as the events subscribers get, and events as bytes in a subscriber's
 * format. Each change becomes one RuntimeEvent (made once, whoever asks first: the live feed, a
 * publish result, a replay), and each event is encoded once per media type, in the event itself.
 */
export class ChangeEvents {
  readonly #resolve: (topic: string) => Route<Resource> | null
  readonly #byStorageName: ReadonlyMap<string, Resource>
  /**
   * The RuntimeEvent made for a ChangeEvent, kept on the change itself under this runtime's own symbol:
   * one WeakMap entry per committed write made every young-generation GC walk an ephemeron table.
   */
  readonly #eventSlot: symbol = Symbol('runtimeEvent')
  readonly #plainEncodings = new WeakMap<object, Map<string, Uint8Array>>()
  readonly #mediaTypes = new Map<string, string | null>()

  constructor(
    resolve: (topic: string) => Route<Resource> | null,
    byStorageName: ReadonlyMap<string, Resource>,
  ) {
    this.#resolve = resolve
    this.#byStorageName = byStorageName
  }

  toEvent(change: ChangeEvent): RuntimeEvent | null {
    const slot = change as ChangeEvent & { [key: symbol]: RuntimeEvent | undefined }
    const cached = slot[this.#eventSlot]
    if (cached !== undefined) return cached
    const event = this.#convert(change)
    if (event !== null) slot[this.#eventSlot] = event
    return event
  }

  #convert(change: ChangeEvent): RuntimeEvent | null {
    const meta = change.meta as EventMeta | undefined
    if (change.table === TOPICS_TABLE) {
      const topic = String(change.id)
      const route = this.#resolve(topic)
      const event = new RuntimeEvent(
        change.type,
        topic,
        route ? route.resource.path : '',
        route ? route.idText : topic,
        change.timestamp,
        change.cursor,
        change.user,
        false,
        meta,
      )
      const record = change.value as TopicRecord | undefined
      if (record) {
        if (record.payload) event.setPayload(record.payload, record.contentType)
        else event.value = record.value
      }
      return event
    }
    const resource = this.#byStorageName.get(change.table)
    if (resource === undefined) return null
    const event = new RuntimeEvent(
      change.type,
      resource.topicFor(change.id),
      resource.path,
      change.id as Key,
      change.timestamp,
      change.cursor,
      change.user,
      false,
      meta,
    )
    if (change.type !== 'delete') {
      const value = change.value
      event.value = fromStored(value)
      // The publisher's bytes came with the write (a put or message stored as decoded from them).
      const original = change.attachment
      if (change.type !== 'patch' && original instanceof PublisherBytes) {
        event.payload = original.payload
        event.contentType = original.contentType
      }
    }
    return event
  }

  /** The bytes of `event` for a subscriber that wants `mediaType`, encoded once per event and type. */
  encode(event: ResourceEvent, mediaType: string): Uint8Array {
    if (event.type === 'delete') return EMPTY
    if (event instanceof RuntimeEvent) {
      const cached = event.cached(mediaType)
      if (cached !== undefined) return cached
      const bytes = this.#encode(event, mediaType)
      event.cache(mediaType, bytes)
      return bytes
    }
    let cache = this.#plainEncodings.get(event)
    const hit = cache?.get(mediaType)
    if (hit) return hit
    const bytes = this.#encode(event, mediaType)
    if (!cache) this.#plainEncodings.set(event, (cache = new Map()))
    cache.set(mediaType, bytes)
    return bytes
  }

  #encode(event: ResourceEvent, mediaType: string): Uint8Array {
    const payload = (event as RuntimeEvent).payload
    if (payload !== undefined) {
      const declared = event.contentType
      const wanted = this.normalize(mediaType)
      // Undeclared bytes are JSON or raw bytes: a JSON subscriber gets them unchanged either way.
      if (
        declared === undefined
          ? wanted === 'application/json'
          : wanted !== null && this.normalize(declared) === wanted
      ) {
        return payload
      }
    }
    const value = event.value
    if (value instanceof Uint8Array) return value
    if (value === undefined) return EMPTY
    try {
      return encodeValue(value, mediaType)
    } catch (error) {
      throw toResourceError(error)
    }
  }

  /** A media type normalized (cached: publishers and subscribers repeat the same few). */
  normalize(mediaType: string): string | null {
    let normalized = this.#mediaTypes.get(mediaType)
    if (normalized === undefined) {
      normalized = normalizeMediaType(mediaType) ?? null
      if (this.#mediaTypes.size > 1000) this.#mediaTypes.clear()
      this.#mediaTypes.set(mediaType, normalized)
    }
    return normalized
  }
}
