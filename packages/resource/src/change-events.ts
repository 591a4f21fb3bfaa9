import { encode as encodeValue, normalizeMediaType } from '@proj/codec'
import type { ChangeEvent, Key } from '@proj/storage'
import { TOPICS_TABLE } from './builtin-topics.js'
import { RuntimeEvent } from './event.js'
import { fromStored } from './own-keys.js'
import { PublishAttachment } from './publish-attachment.js'
import type { Resource } from './resource.js'
import type { Route } from './router.js'
import { toResourceError } from './storage-writes.js'
import type { TopicRecord } from './topic-record.js'
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
  readonly #plainEncodings = new WeakMap<object, Map<string, Uint8Array>>()
  readonly #mediaTypes = new Map<string, string | null>()
  #lastType: string | undefined
  #lastNormalized: string | null = null

  constructor(
    resolve: (topic: string) => Route<Resource> | null,
    byStorageName: ReadonlyMap<string, Resource>,
  ) {
    this.#resolve = resolve
    this.#byStorageName = byStorageName
  }

  /**
   * The RuntimeEvent of `change`. A publish's live change carries its PublishAttachment, which keeps the
   * event for the publish result (a WeakMap entry per committed write made every young-generation GC walk
   * an ephemeron table); other changes are converted once by their single reader (the live feed, a replay).
   */
  toEvent(change: ChangeEvent): RuntimeEvent | null {
    const attachment = change.attachment
    if (!(attachment instanceof PublishAttachment)) return this.#convert(change, undefined)
    let event = attachment.event
    if (event === undefined) attachment.event = event = this.#convert(change, attachment)
    return event
  }

  #convert(change: ChangeEvent, attachment: PublishAttachment | undefined): RuntimeEvent | null {
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
      if (change.type !== 'patch' && attachment?.payload !== undefined) {
        event.payload = attachment.payload
        event.contentType = attachment.contentType
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

  /**
   * A media type normalized (cached: publishers and subscribers repeat the same few). The last one asked
   * for is kept in two fields: every delivery of an event asks for its subscriber's format (the same string
   * each time), and the map lookup was 2.3 % of the broker's busy time in S1.
   */
  normalize(mediaType: string): string | null {
    if (mediaType === this.#lastType) return this.#lastNormalized
    let normalized = this.#mediaTypes.get(mediaType)
    if (normalized === undefined) {
      normalized = normalizeMediaType(mediaType) ?? null
      if (this.#mediaTypes.size > 1000) this.#mediaTypes.clear()
      this.#mediaTypes.set(mediaType, normalized)
    }
    this.#lastType = mediaType
    this.#lastNormalized = normalized
    return normalized
  }
}
