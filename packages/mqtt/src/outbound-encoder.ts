/**
 * Outbound PUBLISH encoding, shared by every subscriber of one event: the topic bytes, the payload per
 * media type, the MQTT 5 property block and whole QoS 0 packets are built once per event and reused across
 * the fan-out. The one cache of encoded outbound bytes in the broker.
 */
import {
  encodePublish,
  encodePublishProperties,
  type PublishProperties,
  topicAliasProperty,
} from './packets.js'
import type { ResourceEvent, Runtime } from './runtime.js'
import type { Logger } from './types.js'

const EMPTY = Buffer.alloc(0)
const NO_TOPIC = Buffer.alloc(0)
const JSON_TYPE = 'application/json'

/** Encodings of one event shared by every subscriber that receives the same bytes. */
interface EventCache {
  topic: Buffer | undefined
  format: string | undefined
  payload: Uint8Array | undefined
  payloads: Map<string, Uint8Array> | undefined
  packets: Map<string, Buffer> | undefined
  props: Map<string, Buffer> | undefined
  packetKey: string | undefined
  packet: Buffer | undefined
}

/**
 * Outbound topic aliases of one connection (MQTT 5 section 3.3.2.3.4): topic -> alias, assigned in order
 * while the client's Topic Alias Maximum allows.
 */
export class OutboundAliases {
  private readonly byTopic = new Map<string, number>()

  constructor(readonly max: number) {}

  get(topic: string): number | undefined {
    return this.byTopic.get(topic)
  }

  /** The alias a new topic would get, undefined when none is left. */
  next(): number | undefined {
    return this.byTopic.size < this.max ? this.byTopic.size + 1 : undefined
  }

  assign(topic: string, alias: number): void {
    this.byTopic.set(topic, alias)
  }
}

/** What an encoding needs to know of the receiving connection. */
export interface EncodeTarget {
  readonly v5: boolean
  /** The client's Maximum Packet Size (Infinity when it set none). */
  readonly clientMaximumPacketSize: number
  /** Null when the client accepts no topic aliases. */
  readonly outAliases: OutboundAliases | null
}

export class OutboundEncoder {
  private lastEvent: ResourceEvent | undefined
  private lastCache: EventCache | undefined

  constructor(
    private readonly runtime: Pick<Runtime, 'encode'>,
    private readonly logger: Logger,
  ) {}

  /**
   * The runtime hands one event to every matching subscriber in a row, so a one-slot cache (the last
   * event seen) shares encodings across a fan-out without a WeakMap lookup per delivery.
   */
  private cache(event: ResourceEvent): EventCache {
    if (event === this.lastEvent) return this.lastCache!
    const c: EventCache = {
      topic: undefined,
      format: undefined,
      payload: undefined,
      payloads: undefined,
      packets: undefined,
      props: undefined,
      packetKey: undefined,
      packet: undefined,
    }
    this.lastEvent = event
    this.lastCache = c
    return c
  }

  topicBytes(event: ResourceEvent): Buffer {
    const c = this.cache(event)
    return (c.topic ??= Buffer.from(event.topic, 'utf8'))
  }

  /** The payload for a subscriber's format: deletes are empty, raw bytes pass through, values are encoded once. */
  payload(event: ResourceEvent, format: string): Uint8Array {
    if (event.type === 'delete') return EMPTY
    const value = event.value
    if (value instanceof Uint8Array) return value
    if (value === undefined) return EMPTY
    const c = this.cache(event)
    if (c.format === format) return c.payload!
    const hit = c.payloads?.get(format)
    if (hit !== undefined) return hit
    let bytes: Uint8Array
    try {
      bytes = this.runtime.encode(event, format)
    } catch (err) {
      if (format === JSON_TYPE) throw err
      this.logger.warn({ err }, `mqtt: cannot encode for ${format}, sending JSON`)
      bytes = this.runtime.encode(event, JSON_TYPE)
    }
    if (c.format === undefined) {
      c.format = format
      c.payload = bytes
    } else {
      ;(c.payloads ??= new Map()).set(format, bytes)
    }
    return bytes
  }

  /**
   * Seconds left of an event's Message Expiry Interval (MQTT 5 section 3.3.2.3.3), counted from its
   * timestamp (when it was published or written); undefined when it has none, 0 or less when expired.
   */
  expiryLeft(event: ResourceEvent): number | undefined {
    const interval = (event.meta?.properties as PublishProperties | undefined)?.messageExpiryInterval
    if (interval === undefined) return undefined
    // Timestamps are microseconds; what is left is rounded to whole seconds, at least 1 while unexpired.
    const left = event.timestamp / 1000 + interval * 1000 - Date.now()
    // Capped at the interval: a timestamp ahead of this clock (another node's) must not extend it.
    return left <= 0 ? 0 : Math.min(interval, Math.max(1, Math.round(left / 1000)))
  }

  /** MQTT 5 property block for an event (without subscription identifiers); `expiry` = seconds left. */
  eventProperties(
    event: ResourceEvent,
    format: string,
    explicitFormat: boolean,
    expiry: number | undefined,
  ): Buffer {
    const meta = event.meta?.properties as PublishProperties | undefined
    const raw = event.value instanceof Uint8Array
    const contentType = raw
      ? event.contentType
      : event.contentType !== undefined || explicitFormat
        ? format
        : undefined
    if (meta === undefined && contentType === undefined) return EMPTY
    const c = this.cache(event)
    const key = `${explicitFormat ? 1 : 0}${expiry ?? ''}:${format}`
    const hit = c.props?.get(key)
    if (hit !== undefined) return hit
    const props: PublishProperties = {}
    if (meta) {
      if (meta.userProperties) props.userProperties = meta.userProperties
      if (meta.responseTopic !== undefined) props.responseTopic = meta.responseTopic
      if (meta.correlationData !== undefined) props.correlationData = Buffer.from(meta.correlationData)
      if (expiry !== undefined) props.messageExpiryInterval = expiry
      // The indicator describes the publisher's bytes: sent only when they are forwarded unchanged.
      if (raw && meta.payloadFormatIndicator !== undefined)
        props.payloadFormatIndicator = meta.payloadFormatIndicator
    }
    if (contentType !== undefined) props.contentType = contentType
    const block = encodePublishProperties(props)
    ;(c.props ??= new Map()).set(key, block)
    return block
  }

  withSubscriptionId(props: Buffer, ids: number | number[] | undefined): Buffer {
    if (ids === undefined) return props
    return Buffer.concat([props, encodePublishProperties(undefined, typeof ids === 'number' ? [ids] : ids)])
  }

  /** A QoS 0 PUBLISH; identical packets (same topic, format, flags, no per-subscriber properties) are shared. */
  qos0Packet(
    event: ResourceEvent,
    format: string,
    retain: boolean,
    v5: boolean,
    ids: number | number[] | undefined,
    explicitFormat: boolean,
    expiry: number | undefined,
  ): Buffer {
    const payload = this.payload(event, format)
    if (v5 && ids !== undefined) {
      const props = this.withSubscriptionId(this.eventProperties(event, format, explicitFormat, expiry), ids)
      return encodePublish(this.topicBytes(event), payload, 0, retain, false, 0, props)
    }
    const c = this.cache(event)
    const key = `${v5 ? (explicitFormat ? 2 : 1) : 0}${retain ? 1 : 0}${v5 ? (expiry ?? '') : ''}:${format}`
    if (c.packetKey === key) return c.packet!
    let packet = c.packets?.get(key)
    if (packet === undefined) {
      const props = v5 ? this.eventProperties(event, format, explicitFormat, expiry) : null
      packet = encodePublish(this.topicBytes(event), payload, 0, retain, false, 0, props)
      if (c.packetKey === undefined) {
        c.packetKey = key
        c.packet = packet
      } else {
        ;(c.packets ??= new Map()).set(key, packet)
      }
    }
    return packet
  }

  /**
   * Encodes a PUBLISH for `target`, with an outbound topic alias when the client accepts them (MQTT 5
   * section 3.3.2.3.4): a known topic is sent as an empty name plus its alias; a new one gets the next
   * free alias while the client's Topic Alias Maximum allows. Null when the packet exceeds the client's
   * Maximum Packet Size (the alias is then not assigned).
   */
  aliased(
    target: EncodeTarget,
    event: ResourceEvent,
    payload: Uint8Array,
    qos: number,
    retain: boolean,
    packetId: number,
    props: Buffer | null,
  ): Buffer | null {
    const max = target.clientMaximumPacketSize
    const aliases = target.outAliases
    const topic = this.topicBytes(event)
    if (aliases !== null && props !== null) {
      const known = aliases.get(event.topic)
      if (known !== undefined) {
        const withAlias = Buffer.concat([props, topicAliasProperty(known)])
        const packet = encodePublish(NO_TOPIC, payload, qos, retain, false, packetId, withAlias)
        return packet.length > max ? null : packet
      }
      const alias = aliases.next()
      if (alias !== undefined) {
        const withAlias = Buffer.concat([props, topicAliasProperty(alias)])
        const packet = encodePublish(topic, payload, qos, retain, false, packetId, withAlias)
        if (packet.length > max) return null
        aliases.assign(event.topic, alias)
        return packet
      }
    }
    const packet = encodePublish(topic, payload, qos, retain, false, packetId, props)
    return packet.length > max ? null : packet
  }
}
