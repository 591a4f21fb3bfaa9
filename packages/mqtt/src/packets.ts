/**
 * Every MQTT packet the broker reads or writes goes through this module. PUBLISH and the
 * acknowledgements, the measured hot path, are read and written by hand (`publish-codec.ts`), and so are
 * the common CONNECT, SUBSCRIBE and SUBACK (`connect-parse.ts`, `subscribe-parse.ts`); every other packet
 * (CONNACK with properties, UNSUBSCRIBE, AUTH, DISCONNECT, ...) goes through mqtt-packet.
 */
import { createRequire } from 'node:module'
import type mqttPacket from 'mqtt-packet'
import { MalformedPacketError } from './errors.js'
import { truncateUtf8 } from './string-field.js'
import { encodeSubackFast, parseSubscribeFast } from './subscribe-parse.js'

export {
  encodeAck,
  encodePublish,
  encodePublishProperties,
  type InboundPublish,
  PINGRESP,
  PUBACK,
  PUBCOMP,
  PUBREC,
  PUBREL,
  type PublishProperties,
  parsePublish,
  reasonStringProperty,
  TopicCache,
  topicAliasProperty,
} from './publish-codec.js'

export type Packet = mqttPacket.Packet
export type ConnectPacket = mqttPacket.IConnectPacket
export type ConnackPacket = mqttPacket.IConnackPacket
export type AuthPacket = mqttPacket.IAuthPacket
export type SubscribePacket = mqttPacket.ISubscribePacket
export type Subscription = mqttPacket.ISubscription
export type UnsubscribePacket = mqttPacket.IUnsubscribePacket
export type DisconnectPacket = mqttPacket.IDisconnectPacket
export type SubackPacket = mqttPacket.ISubackPacket
export type UnsubackPacket = mqttPacket.IUnsubackPacket

let loaded: typeof mqttPacket | undefined

/**
 * mqtt-packet, required on first use: with its dependencies (bl, readable-stream, debug) it is about
 * 5 MB of an idle server's RSS, and a broker nobody connected to, or whose clients only CONNECT and
 * PUBLISH (read and written by hand), never needs it.
 */
function mqttPacketLib(): typeof mqttPacket {
  if (loaded === undefined) {
    loaded = createRequire(import.meta.url)('mqtt-packet') as typeof mqttPacket
    // Its writer otherwise fills a cache of 65,536 two-byte Buffers on its first packet (+7 MB of heap,
    // +15 MB RSS, for good): it writes only the packets that are not hot here, so a number costs a Buffer.
    loaded.writeToStream.cacheNumbers = false
  }
  return loaded
}

const EMPTY = Buffer.alloc(0)
const AVAILABLE = [
  'wildcardSubscriptionAvailable',
  'subscriptionIdentifiersAvailable',
  'sharedSubscriptionAvailable',
  'retainAvailable',
]

// The two accepting CONNACKs, shared (written as they are, never changed).
const CONNACK_ACCEPTED = Buffer.from([0x20, 2, 0, 0])
const CONNACK_RESUMED = Buffer.from([0x20, 2, 1, 0])

/** 3.1.1 CONNACK (also what a client of an unknown protocol level reads): session present, return code. */
export function v3Connack(sessionPresent: boolean, returnCode: number): Buffer {
  if (returnCode === 0) return sessionPresent ? CONNACK_RESUMED : CONNACK_ACCEPTED
  return Buffer.from([0x20, 2, sessionPresent ? 1 : 0, returnCode])
}

/**
 * Generates a packet with mqtt-packet that fits `maxSize`, the client's Maximum Packet Size: the Reason
 * String and User Properties go first when it does not [MQTT-3.1.2-25] [MQTT-3.2.2-19] [MQTT-3.2.2-20];
 * an empty buffer when it still does not fit.
 */
export function generateWithin(packet: Packet, protocolVersion: number, maxSize: number): Buffer {
  const opts = { protocolVersion }
  const props = (packet as { properties?: Record<string, unknown> }).properties
  // A reason string names what was refused (topic filters, many of them): it must fit its length field.
  if (typeof props?.reasonString === 'string') props.reasonString = truncateUtf8(props.reasonString)
  if (packet.cmd === 'suback') {
    const fast = encodeSubackFast(packet, protocolVersion)
    if (fast !== null && fast.length <= maxSize) return fast
  }
  const { generate } = mqttPacketLib()
  let buf = generate(packet, opts)
  if (buf.length <= maxSize) return buf
  if (props !== undefined && (props.reasonString !== undefined || props.userProperties !== undefined)) {
    delete props.reasonString
    delete props.userProperties
    buf = generate(packet, opts)
    if (buf.length <= maxSize) return buf
  }
  if (props !== undefined && packet.cmd === 'connack') {
    // "Available" properties that say true repeat the default (MQTT 5 section 3.2.2.3): optional.
    for (const k of AVAILABLE) if (props[k] === true) delete props[k]
    buf = generate(packet, opts)
    if (buf.length <= maxSize) return buf
  }
  return EMPTY
}

/** Decodes whole frames (one packet each) with mqtt-packet, for one protocol version. */
export class PacketParser {
  private parser: ReturnType<typeof mqttPacket.parser> | null = null
  private parsed: Packet | null = null
  private error: Error | null = null

  constructor(private readonly protocolVersion: number) {}

  parse(frame: Buffer): Packet | MalformedPacketError {
    const subscribe = parseSubscribeFast(frame, this.protocolVersion)
    if (subscribe !== null) return subscribe
    let parser = this.parser
    if (parser === null) {
      parser = this.parser = mqttPacketLib().parser({ protocolVersion: this.protocolVersion })
      parser.on('packet', (p: Packet) => {
        this.parsed = p
      })
      parser.on('error', (err: Error) => {
        this.error = err
      })
    }
    this.parsed = null
    this.error = null
    try {
      parser.parse(frame)
    } catch (err) {
      this.error = err as Error
    }
    if (this.error !== null || this.parsed === null) {
      // A fresh parser next time: mqtt-packet keeps partial state after an error.
      this.parser = null
      return new MalformedPacketError(this.error?.message ?? 'incomplete packet')
    }
    const packet = this.parsed
    this.parsed = null // not kept alive until the next packet
    return packet
  }
}
