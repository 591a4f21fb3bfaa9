import mqttPacket from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import { encodeSubackFast, parseSubscribeFast } from '../src/subscribe-parse.js'
import { inChunk, seeded, theirs } from './packet-oracle.js'

const subscribe = (
  subscriptions: mqttPacket.ISubscription[],
  fields: Partial<mqttPacket.ISubscribePacket> = {},
): mqttPacket.ISubscribePacket => ({ cmd: 'subscribe', messageId: 7, subscriptions, ...fields })

describe('parseSubscribeFast', () => {
  it.each([
    ['3.1.1, one filter', 4, subscribe([{ topic: 'ret/#', qos: 0 }])],
    ['3.1, QoS 2', 3, subscribe([{ topic: 'a/+/b', qos: 2 }], { messageId: 65535 })],
    [
      '3.1.1, several filters, non-ASCII',
      4,
      subscribe([
        { topic: 'Zürich/€', qos: 1 },
        { topic: '😀/#', qos: 0 },
        { topic: '#', qos: 2 },
      ]),
    ],
    [
      '5 without properties, every option',
      5,
      subscribe([
        { topic: 'x/y', qos: 1, nl: true, rap: true, rh: 2 },
        { topic: '$share/g/t', qos: 0, nl: false, rap: false, rh: 1 },
      ]),
    ],
    ['a long filter (two-byte remaining length)', 4, subscribe([{ topic: 't/'.repeat(200), qos: 1 }])],
  ])('reads %s as mqtt-packet does, field for field', (_name, version, packet) => {
    const frame = inChunk(mqttPacket.generate(packet, { protocolVersion: version }))
    const ours = parseSubscribeFast(frame, version)
    const { packet: expected, error } = theirs(frame, version)
    expect(error).toBeUndefined()
    expect(ours).not.toBeNull()
    expect(ours).toEqual(expected)
    expect(Object.keys(ours!)).toEqual(Object.keys(expected!))
    for (let i = 0; i < ours!.subscriptions.length; i++)
      expect(Object.keys(ours!.subscriptions[i]!)).toEqual(
        Object.keys((expected as mqttPacket.ISubscribePacket).subscriptions[i]!),
      )
  })

  it('leaves SUBSCRIBE properties, other packets and malformed SUBSCRIBEs to mqtt-packet', () => {
    const withProps = subscribe([{ topic: 'a', qos: 0 }], { properties: { subscriptionIdentifier: 5 } })
    expect(parseSubscribeFast(mqttPacket.generate(withProps, { protocolVersion: 5 }), 5)).toBeNull()
    const unsubscribe = mqttPacket.generate({ cmd: 'unsubscribe', messageId: 1, unsubscriptions: ['a'] })
    expect(parseSubscribeFast(unsubscribe, 4)).toBeNull()
    const frame = mqttPacket.generate(subscribe([{ topic: 'ab', qos: 1 }]))
    const variants: Buffer[] = []
    for (const options of [0x03, 0x04, 0x80]) {
      const f = Buffer.from(frame)
      f[f.length - 1] = options
      variants.push(f)
    }
    const flags = Buffer.from(frame)
    flags[0] = 0x80 // reserved header flags must be 0010 [MQTT-3.8.1-1]
    variants.push(flags)
    // a SUBSCRIBE with no filter (mqtt-packet reads it as an empty list; the broker then refuses it)
    const empty = Buffer.from([0x82, 2, 0, 7])
    expect(parseSubscribeFast(empty, 4)).toBeNull()
    expect((theirs(empty, 4).packet as mqttPacket.ISubscribePacket).subscriptions).toEqual([])
    for (let cut = 5; cut < frame.length; cut++) {
      const f = Buffer.from(frame.subarray(0, cut))
      f[1] = cut - 2 // a remaining length that matches the shorter body
      variants.push(f)
    }
    for (const f of variants) {
      expect(parseSubscribeFast(f, 4), f.toString('hex')).toBeNull()
      expect(theirs(f, 4).error, f.toString('hex')).toBeDefined()
    }
  })

  it('agrees with mqtt-packet whenever it answers, over 6,000 generated and mutated SUBSCRIBEs (seeded)', () => {
    const rand = seeded(20261203)
    const int = (n: number) => Math.floor(rand() * n)
    const text = () => {
      const alphabet = ['a', 'b', '/', '+', '#', 'é', '€', '😀', '\u0000', ' ']
      let s = ''
      for (let i = 1 + int(12); i > 0; i--) s += alphabet[int(alphabet.length)]
      return s
    }
    let answered = 0
    for (let n = 0; n < 6_000; n++) {
      const version = [3, 4, 5][int(3)] as 3 | 4 | 5
      const subscriptions: mqttPacket.ISubscription[] = []
      for (let i = 1 + int(4); i > 0; i--) {
        const s: mqttPacket.ISubscription = { topic: text(), qos: int(3) as 0 | 1 | 2 }
        if (version === 5) Object.assign(s, { nl: rand() < 0.5, rap: rand() < 0.5, rh: int(3) })
        subscriptions.push(s)
      }
      let frame = mqttPacket.generate(subscribe(subscriptions, { messageId: 1 + int(65535) }), {
        protocolVersion: version,
      })
      // Body bytes only: the frame reader hands on frames whose length matches their fixed header.
      const body = frame[1]! < 128 ? 2 : 3
      const mutation = int(3)
      if (mutation === 1) {
        frame = Buffer.from(frame)
        const at = body + int(frame.length - body)
        frame[at] = frame[at]! ^ (1 << int(8))
      } else if (mutation === 2) {
        frame = Buffer.from(frame)
        frame[body + int(frame.length - body)] = int(256)
      }
      const ours = parseSubscribeFast(frame, version)
      const { packet: expected, error } = theirs(frame, version)
      if (ours === null) continue
      answered++
      expect(error, frame.toString('hex')).toBeUndefined()
      expect(ours, frame.toString('hex')).toEqual(expected)
    }
    expect(answered).toBeGreaterThan(3_000)
  }, 30_000)
})

describe('encodeSubackFast', () => {
  it('writes the bytes mqtt-packet writes, for 3.1.1 and 5, one to 200 codes', () => {
    const rand = seeded(17)
    for (const version of [3, 4, 5]) {
      for (const count of [1, 2, 3, 124, 125, 126, 200]) {
        const granted = Array.from(
          { length: count },
          () => [0, 1, 2, 0x80, 0x87, 0x97][Math.floor(rand() * 6)]!,
        )
        const packet = {
          cmd: 'suback',
          messageId: Math.floor(rand() * 65536),
          granted,
        } as mqttPacket.ISubackPacket
        const ours = encodeSubackFast(packet, version)
        expect(ours).not.toBeNull()
        expect(ours!.toString('hex')).toBe(
          mqttPacket.generate(packet, { protocolVersion: version }).toString('hex'),
        )
      }
    }
  })

  it('leaves a SUBACK with properties to mqtt-packet', () => {
    const packet = {
      cmd: 'suback',
      messageId: 1,
      granted: [0],
      properties: { reasonString: 'r' },
    } as mqttPacket.ISubackPacket
    expect(encodeSubackFast(packet, 5)).toBeNull()
  })
})
