/**
 * The event envelope WebSocket and SSE clients receive: `{ type, id, value, version }` (no `value`
 * on delete). Encoded once per (event, media type) and shared by every connection that wants it.
 */
import type { Key, ResourceEvent } from '@proj/resource'
import { encodeValue, isJsonType, JSON_TYPE } from './media.js'
import { sseFrame } from './sse.js'

export interface EventEnvelope {
  type: ResourceEvent['type']
  id: Key
  value?: unknown
  version: number
}

const textDecoder = new TextDecoder('utf-8', { fatal: true })

/**
 * Raw bytes (a value with a content type the runtime kept as-is) cannot sit inside a JSON document:
 * JSON payloads are parsed, text becomes a string, anything else becomes base64. CBOR and
 * MessagePack carry the bytes unchanged.
 */
function jsonSafe(value: Uint8Array, contentType: string | undefined): unknown {
  const type = contentType?.toLowerCase() ?? ''
  try {
    const text = textDecoder.decode(value)
    if (type === '' || isJsonType(type)) {
      try {
        return JSON.parse(text)
      } catch {
        if (type !== '') return text
      }
    }
    if (type === '' || type.startsWith('text/')) return text
  } catch {
    // not UTF-8: fall through to base64
  }
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64')
}

/** The envelope for an event in a given media type family. */
export function toEnvelope(event: ResourceEvent, json: boolean): EventEnvelope {
  const envelope: EventEnvelope = { type: event.type, id: event.id, version: event.timestamp }
  // delete, leave (a record changed out of a subscribed query) and reset carry no value
  if (event.type !== 'delete' && event.type !== 'leave' && event.type !== 'reset') {
    envelope.value =
      json && event.value instanceof Uint8Array ? jsonSafe(event.value, event.contentType) : event.value
  }
  return envelope
}

// Cache key of the SSE frame; no envelope media type can collide with it.
const SSE_KEY = 'text/event-stream'

/** Encodes envelopes, caching the bytes per event object so fan-out to N clients encodes once. */
export class EnvelopeEncoder {
  readonly #cache = new WeakMap<ResourceEvent, Map<string, Uint8Array>>()

  /** `issuer`: the id SSE ids carry with their cursors (the runtime's `cursorIssuer`), if any. */
  constructor(private readonly issuer: () => number | undefined = () => undefined) {}

  #cached(event: ResourceEvent, key: string, make: () => Uint8Array): Uint8Array {
    let perKey = this.#cache.get(event)
    const hit = perKey?.get(key)
    if (hit) return hit
    const bytes = make()
    if (!perKey) this.#cache.set(event, (perKey = new Map()))
    perKey.set(key, bytes)
    return bytes
  }

  /** JSON as a UTF-8 string's bytes, CBOR or MessagePack as binary. */
  encode(event: ResourceEvent, mediaType: string): Uint8Array {
    return this.#cached(event, mediaType, () =>
      encodeValue(toEnvelope(event, isJsonType(mediaType)), mediaType),
    )
  }

  /** The whole SSE frame (JSON envelope as `data:`), shared by every event stream like the envelope. */
  encodeSse(event: ResourceEvent): Uint8Array {
    return this.#cached(event, SSE_KEY, () => sseFrame(event, this.encode(event, JSON_TYPE), this.issuer()))
  }
}
