/**
 * SUBSCRIBE read and SUBACK written by hand for the common case: MQTT 3.1, 3.1.1 and 5 without
 * SUBSCRIBE or SUBACK properties. Measured in S4 (a new subscriber's retained set): a server whose
 * clients had only connected and published loaded mqtt-packet (with bl and readable-stream) on the first
 * SUBSCRIBE, about 40 ms of CPU between the SUBSCRIBE and its first retained message, and about 5 MB of RSS.
 * The packet is the object mqtt-packet's parser emits, field for field, and the SUBACK its bytes
 * (`test/subscribe-parse.test.ts` checks both against mqtt-packet on generated and mutated packets).
 * Anything else (properties, malformed or unusual bytes) returns null and goes through mqtt-packet, so
 * every error is still mqtt-packet's. Layout: MQTT 3.1.1 sections 3.8 and 3.9, MQTT 5 sections 3.8 and 3.9.
 */
import type mqttPacket from 'mqtt-packet'

// mqtt-packet's types (packets.ts, which calls these, re-exports them under these names)
type SubscribePacket = mqttPacket.ISubscribePacket
type SubackPacket = mqttPacket.ISubackPacket

/** The only fixed header a SUBSCRIBE may have (MQTT 3.1.1 section 3.8.1). */
const SUBSCRIBE_HEADER = 0x82
const SUBACK_HEADER = 0x90

/** Reads a whole SUBSCRIBE frame (fixed header included); null when it is not the common case or not well formed. */
export function parseSubscribeFast(frame: Buffer, protocolVersion: number): SubscribePacket | null {
  if (frame[0] !== SUBSCRIBE_HEADER) return null
  const end = frame.length
  let pos = 1
  while (pos < end && pos < 5 && (frame[pos]! & 0x80) !== 0) pos++
  pos++
  const length = end - pos
  if (length < 3) return null
  const messageId = (frame[pos]! << 8) | frame[pos + 1]!
  pos += 2
  const v5 = protocolVersion === 5
  if (v5) {
    // A property length of 0 is one byte; anything longer goes to mqtt-packet.
    if (frame[pos] !== 0) return null
    pos++
  }
  const subscriptions: SubscribePacket['subscriptions'] = []
  while (pos < end) {
    if (pos + 2 > end) return null
    const start = pos + 2
    const stop = start + ((frame[pos]! << 8) | frame[pos + 1]!)
    // the options byte follows the filter
    if (stop >= end) return null
    const topic = readUtf8(frame, start, stop)
    const options = frame[stop]!
    pos = stop + 1
    if ((options & (v5 ? 0xc0 : 0xfc)) !== 0) return null
    const qos = (options & 0x03) as 0 | 1 | 2 | 3
    if (qos === 3) return null
    if (v5) {
      const rh = (options >> 4) & 0x03
      if (rh > 2) return null
      subscriptions.push({ topic, qos, nl: (options & 0x04) !== 0, rap: (options & 0x08) !== 0, rh })
    } else subscriptions.push({ topic, qos } as SubscribePacket['subscriptions'][number])
  }
  if (subscriptions.length === 0) return null
  // The fields, and their order, of mqtt-packet's Packet and _parseSubscribe.
  const packet: Record<string, unknown> = {
    cmd: 'subscribe',
    retain: false,
    qos: 1,
    dup: false,
    length,
    topic: null,
    payload: null,
    subscriptions,
    messageId,
  }
  return packet as unknown as SubscribePacket
}

/** A SUBACK without properties, as mqtt-packet writes it; null when it has properties or is not well formed. */
export function encodeSubackFast(packet: SubackPacket, protocolVersion: number): Buffer | null {
  const { messageId, granted } = packet
  if (packet.properties !== undefined || typeof messageId !== 'number' || !Array.isArray(granted)) return null
  const count = granted.length
  if (count === 0 || count > 16_000) return null
  const v5 = protocolVersion === 5
  const length = 2 + (v5 ? 1 : 0) + count
  const lengthBytes = length < 128 ? 1 : 2
  const buf = Buffer.allocUnsafe(1 + lengthBytes + length)
  buf[0] = SUBACK_HEADER
  let pos = 1
  if (lengthBytes === 1) buf[pos++] = length
  else {
    buf[pos++] = (length & 0x7f) | 0x80
    buf[pos++] = length >> 7
  }
  buf[pos++] = (messageId >> 8) & 0xff
  buf[pos++] = messageId & 0xff
  if (v5) buf[pos++] = 0
  for (let i = 0; i < count; i++) {
    const code = granted[i]
    if (typeof code !== 'number') return null
    buf[pos++] = code
  }
  return buf
}

/** UTF-8 as mqtt-packet decodes it (`toString('utf8')`); plain ASCII the cheap way. */
function readUtf8(buf: Buffer, start: number, stop: number): string {
  for (let i = start; i < stop; i++) if (buf[i]! >= 0x80) return buf.toString('utf8', start, stop)
  return buf.toString('latin1', start, stop)
}
