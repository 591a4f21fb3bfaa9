/**
 * CONNECT read by hand for the common case: MQTT 3.1 and 3.1.1, and MQTT 5 without CONNECT or will
 * properties. Measured hot in S5 (10,000 connections): mqtt-packet builds a parser per connection (an
 * event emitter and a BufferList stream) that read only this one packet, ~11 % of the broker's CPU there.
 * The result is the object mqtt-packet's parser emits, field for field (`test/connect-parse.test.ts`
 * checks both on generated and mutated packets). Anything else (properties, malformed or unusual bytes)
 * returns null and goes through mqtt-packet, so every error is still mqtt-packet's.
 * Layout: MQTT 3.1.1 section 3.1, MQTT 5 section 3.1.
 */
import type { ConnectPacket } from './packets.js'

/** Connect flags (MQTT 3.1.1 section 3.1.2.3). */
const USERNAME = 0x80
const PASSWORD = 0x40
const WILL_RETAIN = 0x20
const WILL_QOS = 0x18
const WILL = 0x04
const CLEAN = 0x02
const RESERVED = 0x01

/**
 * Reads a CONNECT frame (fixed header included, body from `bodyOffset`); null when it is not the common
 * case or not well formed (the caller then asks mqtt-packet, which gives the error).
 */
export function parseConnectFast(frame: Buffer, bodyOffset: number): ConnectPacket | null {
  if (frame[0] !== 0x10) return null
  const end = frame.length
  let pos = bodyOffset
  const protocolId = readString(frame, pos, end)
  if (protocolId !== 'MQTT' && protocolId !== 'MQIsdp') return null
  pos += 2 + protocolId.length
  if (pos + 4 > end) return null
  let version = frame[pos++]!
  const bridgeMode = version >= 128
  if (bridgeMode) version -= 128
  if (version !== 3 && version !== 4 && version !== 5) return null
  const flags = frame[pos++]!
  if ((flags & RESERVED) !== 0) return null
  const will = (flags & WILL) !== 0
  if (!will && (flags & (WILL_RETAIN | WILL_QOS)) !== 0) return null
  const keepalive = (frame[pos]! << 8) | frame[pos + 1]!
  pos += 2
  if (version === 5) {
    // A property length of 0 is one byte; anything longer goes to mqtt-packet.
    if (pos >= end || frame[pos] !== 0) return null
    pos++
  }
  const clientId = readString(frame, pos, end)
  if (clientId === undefined) return null
  pos += 2 + byteLength(frame, pos)
  let willField: ConnectPacket['will'] | undefined
  if (will) {
    if (version === 5) {
      if (pos >= end || frame[pos] !== 0) return null
      pos++
    }
    const topic = readString(frame, pos, end)
    if (topic === undefined) return null
    pos += 2 + byteLength(frame, pos)
    const payload = readBytes(frame, pos, end)
    if (payload === undefined) return null
    pos += 2 + payload.length
    willField = {
      retain: (flags & WILL_RETAIN) !== 0,
      qos: ((flags & WILL_QOS) >> 3) as 0 | 1 | 2,
      topic,
      payload,
    }
  }
  let username: string | undefined
  if ((flags & USERNAME) !== 0) {
    username = readString(frame, pos, end)
    if (username === undefined) return null
    pos += 2 + byteLength(frame, pos)
  }
  let password: Buffer | undefined
  if ((flags & PASSWORD) !== 0) {
    password = readBytes(frame, pos, end)
    if (password === undefined) return null
  }
  // The fields, and their order, of mqtt-packet's Packet and _parseConnect.
  const packet: Record<string, unknown> = {
    cmd: 'connect',
    retain: false,
    qos: 0,
    dup: false,
    length: end - bodyOffset,
    topic: null,
    payload: null,
    protocolId,
    protocolVersion: version,
  }
  if (bridgeMode) packet.bridgeMode = true
  if (willField !== undefined) packet.will = willField
  packet.clean = (flags & CLEAN) !== 0
  packet.keepalive = keepalive
  packet.clientId = clientId
  if (username !== undefined) packet.username = username
  if (password !== undefined) packet.password = password
  return packet as unknown as ConnectPacket
}

/** The length prefix of the field at `pos` (already checked to fit). */
function byteLength(buf: Buffer, pos: number): number {
  return (buf[pos]! << 8) | buf[pos + 1]!
}

/** A length-prefixed UTF-8 string, decoded as mqtt-packet does (`toString('utf8')`); undefined when it overruns. */
function readString(buf: Buffer, pos: number, end: number): string | undefined {
  if (pos + 2 > end) return undefined
  const start = pos + 2
  const stop = start + byteLength(buf, pos)
  if (stop > end) return undefined
  for (let i = start; i < stop; i++) if (buf[i]! >= 0x80) return buf.toString('utf8', start, stop)
  return buf.toString('latin1', start, stop)
}

/** Length-prefixed binary data, copied (the frame may be a view of a larger socket chunk). */
function readBytes(buf: Buffer, pos: number, end: number): Buffer | undefined {
  if (pos + 2 > end) return undefined
  const start = pos + 2
  const stop = start + byteLength(buf, pos)
  if (stop > end) return undefined
  return Buffer.from(buf.subarray(start, stop))
}
