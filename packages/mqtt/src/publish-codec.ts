/**
 * PUBLISH and acknowledgement packets, read and written by hand: the hot path of the broker.
 * Every other packet goes through mqtt-packet. Layout: MQTT 3.1.1 section 3.3, MQTT 5 section 3.3.
 */
import { MalformedPacketError, type MqttError, ProtocolError, ReasonCode } from './errors.js'
import type { EventMeta } from './runtime.js'
import { truncateUtf8 } from './string-field.js'
import { decodeUtf8, isValidTopicName } from './topic-validate.js'

type UserProperties = Record<string, string | string[]>

/** MQTT 5 PUBLISH properties in mqtt-packet's shape. */
export interface PublishProperties {
  payloadFormatIndicator?: boolean
  messageExpiryInterval?: number
  contentType?: string
  responseTopic?: string
  correlationData?: Buffer
  userProperties?: UserProperties
  topicAlias?: number
  subscriptionIdentifier?: number | number[]
}

/**
 * A parsed PUBLISH. It is also the message handed to the runtime (`PublishMessage`): the inbound flow
 * fills in `meta` and `contentType`, so a message costs one object, not two.
 */
export interface InboundPublish {
  topic: string
  qos: 0 | 1 | 2
  retain: boolean
  dup: boolean
  packetId: number
  payload: Buffer
  properties: PublishProperties | undefined
  /** The runtime's event meta (set by the inbound flow). */
  meta: EventMeta | undefined
  /** The payload's media type (set by the inbound flow). */
  contentType: string | undefined
}

const EMPTY = Buffer.alloc(0)

/** Topics up to this many bytes are remembered by a TopicCache. */
const CACHED_TOPIC_BYTES = 64

/**
 * A publisher's last topic and its bytes: a PUBLISH to the same topic gets the same string back (no decode,
 * no string, and its hash is already computed for every Map it is looked up in). One per connection.
 */
export class TopicCache {
  private readonly bytes = Buffer.allocUnsafe(CACHED_TOPIC_BYTES)
  private length = -1
  private topic = ''

  /** The string for bytes `start` to `end` of `buf`; undefined when they are not valid UTF-8 or hold U+0000. */
  decode(buf: Buffer, start: number, end: number): string | undefined {
    const length = end - start
    if (length === this.length) {
      const bytes = this.bytes
      let i = 0
      while (i < length && bytes[i] === buf[start + i]) i++
      if (i === length) return this.topic
    }
    const topic = decodeUtf8(buf, start, end)
    if (topic !== undefined && length <= CACHED_TOPIC_BYTES) {
      buf.copy(this.bytes, 0, start, end)
      this.length = length
      this.topic = topic
    }
    return topic
  }
}

/**
 * Parses the PUBLISH in bytes `start` to `end` of `frame` (fixed header included, body from `bodyOffset`);
 * returns an error for malformed bytes.
 */
export function parsePublish(
  frame: Buffer,
  start: number,
  bodyOffset: number,
  end: number,
  v5: boolean,
  topics?: TopicCache,
): InboundPublish | MqttError {
  const flags = frame[start]! & 0x0f
  const qos = (flags >> 1) & 3
  if (qos === 3) return new MalformedPacketError('PUBLISH with QoS 3') // [MQTT-3.3.1-4]
  const dup = (flags & 8) !== 0
  if (dup && qos === 0) return new MalformedPacketError('DUP set on a QoS 0 PUBLISH') // [MQTT-3.3.1-2]
  let pos = bodyOffset
  if (pos + 2 > end) return new MalformedPacketError('PUBLISH too short')
  const topicLen = (frame[pos]! << 8) | frame[pos + 1]!
  pos += 2
  if (pos + topicLen > end) return new MalformedPacketError('PUBLISH topic longer than the packet')
  const topic =
    topics !== undefined ? topics.decode(frame, pos, pos + topicLen) : decodeUtf8(frame, pos, pos + topicLen)
  if (topic === undefined) return new MalformedPacketError('PUBLISH topic is not valid UTF-8')
  pos += topicLen
  let packetId = 0
  if (qos > 0) {
    if (pos + 2 > end) return new MalformedPacketError('PUBLISH without packet identifier')
    packetId = (frame[pos]! << 8) | frame[pos + 1]!
    pos += 2
    if (packetId === 0) return new MalformedPacketError('PUBLISH with packet identifier 0') // [MQTT-2.3.1-1]
  }
  let properties: PublishProperties | undefined
  if (v5) {
    const r = readVarInt(frame, pos, end)
    if (r < 0) return new MalformedPacketError('bad property length')
    const propLen = r & 0x0fffffff
    pos += r >>> 28
    const propEnd = pos + propLen
    if (propEnd > end) return new MalformedPacketError('properties longer than the packet')
    if (propLen > 0) {
      const parsed = parsePublishProperties(frame, pos, propEnd)
      if (parsed instanceof Error) return parsed
      properties = parsed
    }
    pos = propEnd
  }
  return {
    topic,
    qos: qos as 0 | 1 | 2,
    retain: (flags & 1) !== 0,
    dup,
    packetId,
    payload: pos < end ? frame.subarray(pos, end) : EMPTY,
    properties,
    meta: undefined,
    contentType: undefined,
  }
}

/** Returns (bytes << 28) | value, or -1 when malformed. Values fit in 28 bits. */
function readVarInt(buf: Buffer, pos: number, end: number): number {
  let value = 0
  let mult = 1
  for (let i = 0; i < 4; i++) {
    if (pos + i >= end) return -1
    const b = buf[pos + i]!
    value += (b & 0x7f) * mult
    if ((b & 0x80) === 0) return ((i + 1) << 28) | value
    mult *= 128
  }
  return -1
}

function parsePublishProperties(buf: Buffer, pos: number, end: number): PublishProperties | MqttError {
  const props: PublishProperties = {}
  const bad = (what: string) => new MalformedPacketError(`bad PUBLISH property ${what}`)
  const readString = (): string | undefined => {
    if (pos + 2 > end) return undefined
    const len = (buf[pos]! << 8) | buf[pos + 1]!
    if (pos + 2 + len > end) return undefined
    const s = decodeUtf8(buf, pos + 2, pos + 2 + len)
    pos += 2 + len
    return s
  }
  while (pos < end) {
    const id = buf[pos++]!
    switch (id) {
      case 0x01: {
        if (props.payloadFormatIndicator !== undefined) return new ProtocolError('duplicate property')
        if (pos >= end) return bad('payload format indicator')
        const v = buf[pos++]!
        if (v > 1) return new ProtocolError('payload format indicator must be 0 or 1')
        props.payloadFormatIndicator = v === 1
        break
      }
      case 0x02:
        if (props.messageExpiryInterval !== undefined) return new ProtocolError('duplicate property')
        if (pos + 4 > end) return bad('message expiry')
        props.messageExpiryInterval = buf.readUInt32BE(pos)
        pos += 4
        break
      case 0x03: {
        if (props.contentType !== undefined) return new ProtocolError('duplicate property')
        const s = readString()
        if (s === undefined) return bad('content type')
        props.contentType = s
        break
      }
      case 0x08: {
        if (props.responseTopic !== undefined) return new ProtocolError('duplicate property')
        const s = readString()
        if (s === undefined) return bad('response topic')
        // A Topic Name: no wildcards [MQTT-3.3.2-14].
        if (!isValidTopicName(s))
          return new ProtocolError('response topic must be a topic name', ReasonCode.TopicNameInvalid)
        props.responseTopic = s
        break
      }
      case 0x09: {
        if (props.correlationData !== undefined) return new ProtocolError('duplicate property')
        if (pos + 2 > end) return bad('correlation data')
        const len = (buf[pos]! << 8) | buf[pos + 1]!
        if (pos + 2 + len > end) return bad('correlation data')
        props.correlationData = Buffer.from(buf.subarray(pos + 2, pos + 2 + len))
        pos += 2 + len
        break
      }
      case 0x0b:
        // [MQTT-3.3.4-6] a client must not send a subscription identifier.
        return new ProtocolError('PUBLISH from a client must not carry a subscription identifier')
      case 0x23:
        if (props.topicAlias !== undefined) return new ProtocolError('duplicate property')
        if (pos + 2 > end) return bad('topic alias')
        props.topicAlias = (buf[pos]! << 8) | buf[pos + 1]!
        pos += 2
        break
      case 0x26: {
        const k = readString()
        const v = k === undefined ? undefined : readString()
        if (k === undefined || v === undefined) return bad('user property')
        const ups = (props.userProperties ??= {})
        const prev = ups[k]
        if (prev === undefined) ups[k] = v
        else if (Array.isArray(prev)) prev.push(v)
        else ups[k] = [prev, v]
        break
      }
      default:
        return bad(`0x${id.toString(16)}`)
    }
  }
  return props
}

// ---------------------------------------------------------------------------------------------
// Writing

function varIntSize(n: number): number {
  return n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4
}

function writeVarInt(buf: Buffer, pos: number, n: number): number {
  do {
    let b = n % 128
    n = Math.floor(n / 128)
    if (n > 0) b |= 0x80
    buf[pos++] = b
  } while (n > 0)
  return pos
}

/**
 * Encodes MQTT 5 PUBLISH properties (without the property-length prefix). Returns an empty buffer
 * when there is nothing to send, so v5 packets without properties stay shareable.
 */
export function encodePublishProperties(
  props: PublishProperties | undefined,
  subscriptionIds?: readonly number[],
): Buffer {
  const parts: Buffer[] = []
  if (props) {
    if (props.payloadFormatIndicator !== undefined)
      parts.push(Buffer.from([0x01, props.payloadFormatIndicator ? 1 : 0]))
    if (props.messageExpiryInterval !== undefined) {
      const b = Buffer.allocUnsafe(5)
      b[0] = 0x02
      b.writeUInt32BE(props.messageExpiryInterval >>> 0, 1)
      parts.push(b)
    }
    if (props.contentType !== undefined) parts.push(stringProp(0x03, props.contentType))
    if (props.responseTopic !== undefined) parts.push(stringProp(0x08, props.responseTopic))
    if (props.correlationData !== undefined) {
      const data = Buffer.from(props.correlationData)
      const b = Buffer.allocUnsafe(3)
      b[0] = 0x09
      b.writeUInt16BE(data.length, 1)
      parts.push(b, data)
    }
    if (props.topicAlias !== undefined) {
      parts.push(Buffer.from([0x23, props.topicAlias >> 8, props.topicAlias & 0xff]))
    }
    if (props.userProperties) {
      for (const [k, v] of Object.entries(props.userProperties)) {
        for (const value of Array.isArray(v) ? v : [v]) {
          parts.push(Buffer.from([0x26]), lengthPrefixed(k), lengthPrefixed(String(value)))
        }
      }
    }
  }
  if (subscriptionIds) {
    for (const id of subscriptionIds) {
      const b = Buffer.allocUnsafe(1 + varIntSize(id))
      b[0] = 0x0b
      writeVarInt(b, 1, id)
      parts.push(b)
    }
  }
  return parts.length === 0 ? EMPTY : Buffer.concat(parts)
}

function lengthPrefixed(s: string): Buffer {
  const body = Buffer.from(s, 'utf8')
  const b = Buffer.allocUnsafe(2 + body.length)
  b.writeUInt16BE(body.length, 0)
  body.copy(b, 2)
  return b
}

function stringProp(id: number, s: string): Buffer {
  return Buffer.concat([Buffer.from([id]), lengthPrefixed(s)])
}

/** The UTF-8 length of a topic; ASCII (the common case) is counted without a call into Node. */
function topicLength(topic: string): number {
  const n = topic.length
  for (let i = 0; i < n; i++) if (topic.charCodeAt(i) >= 0x80) return Buffer.byteLength(topic, 'utf8')
  return n
}

/**
 * One PUBLISH packet in one buffer. The topic is written straight into it (no buffer of its own);
 * `properties` is null for v3.1/3.1.1 and the encoded property block (possibly empty) for v5.
 */
export function encodePublish(
  topic: string,
  payload: Uint8Array,
  qos: number,
  retain: boolean,
  dup: boolean,
  packetId: number,
  properties: Buffer | null,
): Buffer {
  const topicLen = topicLength(topic)
  const propLen = properties === null ? 0 : properties.length
  const remaining =
    2 +
    topicLen +
    (qos > 0 ? 2 : 0) +
    (properties === null ? 0 : varIntSize(propLen) + propLen) +
    payload.length
  const size = 1 + varIntSize(remaining) + remaining
  const buf = Buffer.allocUnsafe(size)
  buf[0] = 0x30 | (dup ? 8 : 0) | (qos << 1) | (retain ? 1 : 0)
  let pos = writeVarInt(buf, 1, remaining)
  buf[pos++] = topicLen >> 8
  buf[pos++] = topicLen & 0xff
  if (topicLen === topic.length) {
    for (let i = 0; i < topicLen; i++) buf[pos + i] = topic.charCodeAt(i)
  } else {
    buf.write(topic, pos, topicLen, 'utf8')
  }
  pos += topicLen
  if (qos > 0) {
    buf[pos++] = packetId >> 8
    buf[pos++] = packetId & 0xff
  }
  if (properties !== null) {
    pos = writeVarInt(buf, pos, propLen)
    if (propLen > 0) pos += properties.copy(buf, pos)
  }
  if (payload.length > 0) buf.set(payload, pos)
  return buf
}

export const PUBACK = 0x40
export const PUBREC = 0x50
export const PUBREL = 0x62
export const PUBCOMP = 0x70

/**
 * PUBACK / PUBREC / PUBREL / PUBCOMP; the reason code is written only for v5 and when not 0 (or when
 * there are properties). `properties` is an encoded property block (reason string, user properties).
 */
export function encodeAck(
  type: number,
  packetId: number,
  reasonCode: number,
  v5: boolean,
  properties?: Buffer,
): Buffer {
  if (v5 && properties !== undefined && properties.length > 0) {
    const remaining = 3 + varIntSize(properties.length) + properties.length
    const buf = Buffer.allocUnsafe(1 + varIntSize(remaining) + remaining)
    buf[0] = type
    let pos = writeVarInt(buf, 1, remaining)
    buf[pos++] = packetId >> 8
    buf[pos++] = packetId & 0xff
    buf[pos++] = reasonCode
    pos = writeVarInt(buf, pos, properties.length)
    properties.copy(buf, pos)
    return buf
  }
  if (v5 && reasonCode !== 0) {
    return Buffer.from([type, 3, packetId >> 8, packetId & 0xff, reasonCode])
  }
  return Buffer.from([type, 2, packetId >> 8, packetId & 0xff])
}

/** A Reason String property (0x1F) for acknowledgements, shortened to fit its two-byte length. */
export function reasonStringProperty(reason: string): Buffer {
  return stringProp(0x1f, truncateUtf8(reason))
}

/** A Topic Alias property (0x23), appended to a PUBLISH property block. */
export function topicAliasProperty(alias: number): Buffer {
  return Buffer.from([0x23, alias >> 8, alias & 0xff])
}

export const PINGRESP = Buffer.from([0xd0, 0])
