import mqttPacket from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import { parseConnectFast } from '../src/connect-parse.js'
import { inChunk, seeded, theirs } from './packet-oracle.js'

/** Offset of the body: after the type byte and the remaining length (1-4 bytes). */
function bodyOffset(frame: Buffer): number {
  let i = 1
  while (i < frame.length && i < 5 && (frame[i]! & 0x80) !== 0) i++
  return i + 1
}

const connect = (fields: Partial<mqttPacket.IConnectPacket>): mqttPacket.IConnectPacket =>
  ({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean: true,
    keepalive: 60,
    clientId: 'c1',
    ...fields,
  }) as mqttPacket.IConnectPacket

describe('parseConnectFast', () => {
  it.each([
    ['3.1.1 clean', connect({})],
    ['3.1.1 persistent, keep-alive 0', connect({ clean: false, keepalive: 0 })],
    ['3.1.1 clean, empty client id', connect({ clientId: '' })],
    ['3.1 (MQIsdp)', connect({ protocolId: 'MQIsdp', protocolVersion: 3 })],
    ['3.1.1 user and password', connect({ username: 'ann', password: Buffer.from('s3cret') })],
    ['3.1.1 non-ASCII client id and user', connect({ clientId: 'Zürich-€-😀', username: 'Jürgen' })],
    ['3.1.1 will', connect({ will: { topic: 'w/t', payload: Buffer.from('bye'), qos: 1, retain: true } })],
    [
      '3.1.1 will with empty payload, QoS 2',
      connect({ will: { topic: 'x', payload: Buffer.alloc(0), qos: 2, retain: false } }),
    ],
    ['5 without properties', connect({ protocolVersion: 5 })],
    [
      '5 will without properties, user, password',
      connect({
        protocolVersion: 5,
        username: 'u',
        password: Buffer.from('p'),
        will: { topic: 'w', payload: Buffer.from('x'), qos: 0, retain: false },
      }),
    ],
    ['a long client id (two-byte remaining length)', connect({ clientId: 'c'.repeat(300) })],
  ])('reads %s as mqtt-packet does, field for field', (_name, packet) => {
    const frame = inChunk(mqttPacket.generate(packet, { protocolVersion: packet.protocolVersion }))
    const ours = parseConnectFast(frame, bodyOffset(frame))
    const { packet: expected, error } = theirs(frame, packet.protocolVersion ?? 4)
    expect(error).toBeUndefined()
    expect(ours).not.toBeNull()
    expect(ours).toEqual(expected)
    expect(Object.keys(ours!)).toEqual(Object.keys(expected!))
    if (packet.will)
      expect(Object.keys(ours!.will!)).toEqual(Object.keys((expected as mqttPacket.IConnectPacket).will!))
  })

  it.each([
    ['CONNECT properties', connect({ protocolVersion: 5, properties: { sessionExpiryInterval: 10 } })],
    [
      'will properties',
      connect({
        protocolVersion: 5,
        will: {
          topic: 'w',
          payload: Buffer.from('x'),
          qos: 0,
          retain: false,
          properties: { willDelayInterval: 5 },
        },
      }),
    ],
  ])('leaves MQTT 5 %s to mqtt-packet', (_name, packet) => {
    const frame = mqttPacket.generate(packet, { protocolVersion: 5 })
    expect(parseConnectFast(frame, bodyOffset(frame))).toBeNull()
  })

  it('leaves malformed CONNECTs to mqtt-packet: reserved flag, will flags without a will, truncation, unknown protocol', () => {
    const frame = mqttPacket.generate(connect({ username: 'u' }))
    const body = bodyOffset(frame)
    const flagsAt = body + 2 + 4 + 1
    const variants: Buffer[] = []
    for (const bits of [0x01, 0x20, 0x08, 0x18]) {
      const f = Buffer.from(frame)
      f[flagsAt] = f[flagsAt]! | bits
      variants.push(f)
    }
    const wrongName = Buffer.from(frame)
    wrongName[body + 2] = 0x4e // 'NQTT'
    variants.push(wrongName)
    const wrongLevel = Buffer.from(frame)
    wrongLevel[body + 6] = 6
    variants.push(wrongLevel)
    for (let cut = body; cut < frame.length; cut++) {
      const f = Buffer.from(frame.subarray(0, cut))
      f[1] = cut - 2 // a remaining length that matches the shorter body
      variants.push(f)
    }
    for (const f of variants) {
      expect(parseConnectFast(f, body), f.toString('hex')).toBeNull()
      expect(theirs(f, 4).error, f.toString('hex')).toBeDefined()
    }
  })

  it('agrees with mqtt-packet whenever it answers, over 6,000 generated and mutated CONNECTs (seeded)', () => {
    const rand = seeded(20261203)
    const int = (n: number) => Math.floor(rand() * n)
    const text = () => {
      const alphabet = ['a', 'b', '/', '0', 'é', '€', '😀', '\u0000', ' ']
      let s = ''
      for (let i = int(12); i > 0; i--) s += alphabet[int(alphabet.length)]
      return s
    }
    let answered = 0
    for (let n = 0; n < 6_000; n++) {
      const version = [3, 4, 5][int(3)] as 3 | 4 | 5
      const packet = connect({
        protocolId: version === 3 ? 'MQIsdp' : 'MQTT',
        protocolVersion: version,
        clean: rand() < 0.5,
        keepalive: int(65536),
        clientId: text(),
        ...(rand() < 0.4 ? { username: text() } : {}),
        ...(rand() < 0.3 ? { password: Buffer.from(text()) } : {}),
        ...(rand() < 0.3
          ? {
              will: {
                topic: text(),
                payload: Buffer.from(text()),
                qos: int(3) as 0 | 1 | 2,
                retain: rand() < 0.5,
              },
            }
          : {}),
      })
      let frame: Buffer
      try {
        frame = mqttPacket.generate(packet, { protocolVersion: version })
      } catch {
        continue // mqtt-packet refuses to write some combinations (a password without a user name)
      }
      // Body bytes only: the frame reader hands on frames whose length matches their fixed header.
      const body = bodyOffset(frame)
      const mutation = int(3)
      if (mutation === 1) {
        frame = Buffer.from(frame)
        const at = body + int(frame.length - body)
        frame[at] = frame[at]! ^ (1 << int(8))
      } else if (mutation === 2) {
        frame = Buffer.from(frame)
        frame[body + int(frame.length - body)] = int(256)
      }
      const ours = parseConnectFast(frame, body)
      if (ours === null) continue
      answered++
      const { packet: expected, error } = theirs(frame, version)
      expect(error, frame.toString('hex')).toBeUndefined()
      expect(ours, frame.toString('hex')).toEqual(expected)
    }
    expect(answered).toBeGreaterThan(3_000)
  }, 30_000)
})
