/**
 * Outbound PUBLISH encoding, shared by every subscriber of one event. The payload bytes per media type are
 * the runtime's: `runtime.encode` caches them on the event (one cache, shared with the HTTP doors). What is
 * MQTT's alone is cached here, for the last event only: the MQTT 5 property blocks and
 * whole QoS 0 packets, so a fan-out of one event frames it once.
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
const JSON_TYPE = 'application/json'

/** A QoS 0 PUBLISH shared by every subscriber that gets the same payload, properties and retain flag. */
interface SharedPacket {
  payload: Uint8Array
  props: Buffer | null
  retain: boolean
  packet: Buffer
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
  /**
   * The framing of the last event seen, in fields of its own (no object per event): the runtime hands one
   * event to every matching subscriber in a row, so this one slot shares it across a fan-out without a
   * lookup per delivery.
   */
  private lastEvent: ResourceEvent | undefined
  /** MQTT 5 property blocks of the last event, by what they depend on. */
  private lastProps: Map<string, Buffer> | undefined
  /** The first shared QoS 0 packet of the last event (most fan-outs need one), and its key. */
  private packet: Buffer | undefined
  private packetPayload: Uint8Array | undefined
  private packetProps: Buffer | null = null
  private packetRetain = false
  /** More shared packets of the last event (other formats, properties or retain flags). */
  private packets: SharedPacket[] | undefined
  /** A format the runtime could not encode the last event in (JSON went instead; warned once). */
  private unencodable: string | undefined

  constructor(
    private readonly runtime: Pick<Runtime, 'encode'>,
    private readonly logger: Logger,
  ) {}

  /** Starts the framing of `event` (the previous event's is dropped). */
  private track(event: ResourceEvent): void {
    if (event === this.lastEvent) return
    this.lastEvent = event
    this.lastProps = undefined
    this.packet = undefined
    this.packetPayload = undefined
    this.packetProps = null
    this.packets = undefined
    this.unencodable = undefined
  }

  /**
   * The payload for a subscriber's format: deletes are empty, raw bytes pass through, values are encoded by
   * the runtime (once per event and media type, cached on the event). A format the value cannot be encoded
   * in gets JSON.
   */
  payload(event: ResourceEvent, format: string): Uint8Array {
    if (event.type === 'delete') return EMPTY
    // Publisher bytes go to a JSON subscriber as they are, without decoding them (`event.value` would).
    if (format === JSON_TYPE) return this.runtime.encode(event, JSON_TYPE)
    const value = event.value
    if (value instanceof Uint8Array) return value
    if (value === undefined) return EMPTY
    this.track(event)
    if (this.unencodable === format) return this.runtime.encode(event, JSON_TYPE)
    try {
      return this.runtime.encode(event, format)
    } catch (err) {
      this.logger.warn({ err }, `mqtt: cannot encode for ${format}, sending JSON`)
      this.unencodable = format
      return this.runtime.encode(event, JSON_TYPE)
    }
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
    this.track(event)
    const key = `${explicitFormat ? 1 : 0}${expiry ?? ''}:${format}`
    const hit = this.lastProps?.get(key)
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
    ;(this.lastProps ??= new Map()).set(key, block)
    return block
  }

  withSubscriptionId(props: Buffer, ids: number | number[] | undefined): Buffer {
    if (ids === undefined) return props
    return Buffer.concat([props, encodePublishProperties(undefined, typeof ids === 'number' ? [ids] : ids)])
  }

  /**
   * The PUBLISH of one delivery. `props` is the property block (null for 3.1.1); `packetId` 0 for QoS 0.
   * A QoS 0 packet without per-subscriber parts (`shareable`: no subscription identifier, no topic alias)
   * is built once per event and shared by every subscriber whose payload, properties and retain flag are
   * the same bytes (the same objects: both come from caches). Null when the packet exceeds the client's
   * Maximum Packet Size.
   */
  publish(
    target: EncodeTarget,
    event: ResourceEvent,
    payload: Uint8Array,
    props: Buffer | null,
    qos: number,
    retain: boolean,
    packetId: number,
    shareable: boolean,
  ): Buffer | null {
    if (!shareable || qos !== 0 || target.outAliases !== null)
      return this.aliased(target, event, payload, qos, retain, packetId, props)
    this.track(event)
    let packet = this.packet
    if (
      packet === undefined ||
      this.packetPayload !== payload ||
      this.packetProps !== props ||
      this.packetRetain !== retain
    ) {
      packet = this.packets?.find(
        (p) => p.payload === payload && p.props === props && p.retain === retain,
      )?.packet
      if (packet === undefined) {
        packet = encodePublish(event.topic, payload, 0, retain, false, 0, props)
        if (this.packet === undefined) {
          this.packet = packet
          this.packetPayload = payload
          this.packetProps = props
          this.packetRetain = retain
        } else {
          ;(this.packets ??= []).push({ payload, props, retain, packet })
        }
      }
    }
    return packet.length > target.clientMaximumPacketSize ? null : packet
  }

  /**
   * Encodes a PUBLISH for `target`, with an outbound topic alias when the client accepts them (MQTT 5
   * section 3.3.2.3.4): a known topic is sent as an empty name plus its alias; a new one gets the next
   * free alias while the client's Topic Alias Maximum allows. Null when the packet exceeds the client's
   * Maximum Packet Size (the alias is then not assigned).
   */
  private aliased(
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
    const topic = event.topic
    if (aliases !== null && props !== null) {
      const known = aliases.get(topic)
      if (known !== undefined) {
        const withAlias = Buffer.concat([props, topicAliasProperty(known)])
        const packet = encodePublish('', payload, qos, retain, false, packetId, withAlias)
        return packet.length > max ? null : packet
      }
      const alias = aliases.next()
      if (alias !== undefined) {
        const withAlias = Buffer.concat([props, topicAliasProperty(alias)])
        const packet = encodePublish(topic, payload, qos, retain, false, packetId, withAlias)
        if (packet.length > max) return null
        aliases.assign(topic, alias)
        return packet
      }
    }
    const packet = encodePublish(topic, payload, qos, retain, false, packetId, props)
    return packet.length > max ? null : packet
  }
}
