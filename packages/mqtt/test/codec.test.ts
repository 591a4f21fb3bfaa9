import { createRequire } from 'node:module'
import mqttPacket from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import { FrameReader } from '../src/frame-reader.js'
import { generateWithin } from '../src/packets.js'
import {
  encodeAck,
  encodePublish,
  encodePublishProperties,
  type InboundPublish,
  PUBACK,
  parsePublish,
  reasonStringProperty,
  TopicCache,
  topicAliasProperty,
} from '../src/publish-codec.js'

function roundTrip(packet: mqttPacket.IPublishPacket, protocolVersion: 4 | 5): InboundPublish {
  const bytes = mqttPacket.generate(packet, { protocolVersion })
  const frames: [Buffer, number, number, number][] = []
  const reader = new FrameReader(
    {
      onFrame: (b, s, o, e) => frames.push([b, s, o, e]),
      onFrameError: (e) => {
        throw e
      },
    },
    1e9,
  )
  reader.push(bytes)
  expect(frames).toHaveLength(1)
  const [buf, start, body, end] = frames[0]!
  const parsed = parsePublish(buf, start, body, end, protocolVersion === 5)
  if (!('topic' in parsed)) throw parsed
  return parsed
}

describe('parsePublish', () => {
  it.each([
    ['v3 qos0', 4, { qos: 0, topic: 'a/b', payload: 'hello' }],
    ['v3 qos1 retain', 4, { qos: 1, messageId: 7, retain: true, topic: 'Dog/1', payload: '{"a":1}' }],
    ['v3 qos2 dup', 4, { qos: 2, messageId: 65535, dup: true, topic: 'x', payload: '' }],
    ['v3 utf8 topic', 4, { qos: 0, topic: 'München/€', payload: 'x' }],
    ['v5 no props', 5, { qos: 1, messageId: 1, topic: 't', payload: 'p' }],
  ] as const)('reads what mqtt-packet writes: %s', (_name, v, fields) => {
    const packet = { cmd: 'publish', dup: false, retain: false, ...fields } as mqttPacket.IPublishPacket
    const parsed = roundTrip(packet, v)
    expect(parsed.topic).toBe(packet.topic)
    expect(parsed.qos).toBe(packet.qos)
    expect(parsed.retain).toBe(packet.retain)
    expect(parsed.dup).toBe(packet.dup)
    expect(parsed.packetId).toBe(packet.qos > 0 ? packet.messageId : 0)
    expect(parsed.payload.toString()).toBe(String(packet.payload))
  })

  it('reads v5 properties', () => {
    const parsed = roundTrip(
      {
        cmd: 'publish',
        qos: 1,
        messageId: 3,
        dup: false,
        retain: false,
        topic: 't',
        payload: Buffer.from('x'),
        properties: {
          payloadFormatIndicator: true,
          messageExpiryInterval: 60,
          contentType: 'application/cbor',
          responseTopic: 'reply/1',
          correlationData: Buffer.from([1, 2]),
          topicAlias: 4,
          userProperties: { a: '1', b: ['2', '3'] },
        },
      },
      5,
    )
    expect(parsed.properties).toEqual({
      payloadFormatIndicator: true,
      messageExpiryInterval: 60,
      contentType: 'application/cbor',
      responseTopic: 'reply/1',
      correlationData: Buffer.from([1, 2]),
      topicAlias: 4,
      userProperties: { a: '1', b: ['2', '3'] },
    })
  })

  it.each([
    ['QoS 3', Buffer.from([0x36, 5, 0, 1, 0x61, 0, 1])],
    ['DUP on QoS 0', Buffer.from([0x38, 3, 0, 1, 0x61])],
    ['packet id 0', Buffer.from([0x32, 5, 0, 1, 0x61, 0, 0])],
    ['topic longer than packet', Buffer.from([0x30, 3, 0, 9, 0x61])],
    ['invalid UTF-8 topic', Buffer.from([0x30, 4, 0, 2, 0xc3, 0x28])],
    ['U+0000 in topic', Buffer.from([0x30, 4, 0, 2, 0x61, 0x00])],
    ['missing packet id', Buffer.from([0x32, 3, 0, 1, 0x61])],
  ])('refuses %s', (_name, bytes) => {
    const result = parsePublish(bytes, 0, 2, bytes.length, false)
    expect(result).toBeInstanceOf(Error)
  })

  it('refuses a subscription identifier from a client [MQTT-3.3.4-6]', () => {
    const bytes = Buffer.from([0x30, 6, 0, 1, 0x61, 2, 0x0b, 1])
    expect(parsePublish(bytes, 0, 2, bytes.length, true)).toBeInstanceOf(Error)
  })

  it.each([
    ['empty', ''],
    ['with +', 'reply/+'],
    ['with #', 'reply/#'],
  ])('refuses a response topic that is not a topic name: %s [MQTT-3.3.2-14]', (_name, responseTopic) => {
    const packet = { cmd: 'publish', qos: 0, topic: 't', payload: 'p', dup: false, retain: false }
    const bytes = mqttPacket.generate(
      { ...packet, properties: { responseTopic } } as mqttPacket.IPublishPacket,
      {
        protocolVersion: 5,
      },
    )
    const result = parsePublish(bytes, 0, 2, bytes.length, true)
    expect(result).toBeInstanceOf(Error)
    expect((result as Error & { reasonCode: number }).reasonCode).toBe(0x90)
  })
})

describe('encodePublish', () => {
  it.each([4, 5] as const)('writes what mqtt-packet reads (v%s)', (v) => {
    const props =
      v === 5
        ? encodePublishProperties({ contentType: 'application/json', userProperties: { k: 'v' } }, [9])
        : null
    const bytes = encodePublish('Dog/1', Buffer.from('{"x":1}'), 1, true, true, 513, props)
    const parser = mqttPacket.parser({ protocolVersion: v })
    const out: mqttPacket.Packet[] = []
    parser.on('packet', (p) => out.push(p))
    parser.parse(bytes)
    expect(out).toHaveLength(1)
    const p = out[0] as mqttPacket.IPublishPacket
    expect(p).toMatchObject({
      cmd: 'publish',
      topic: 'Dog/1',
      qos: 1,
      retain: true,
      dup: true,
      messageId: 513,
    })
    expect(p.payload.toString()).toBe('{"x":1}')
    if (v === 5) {
      expect(p.properties).toMatchObject({
        contentType: 'application/json',
        userProperties: { k: 'v' },
        subscriptionIdentifier: 9,
      })
    }
  })

  it.each([
    ['ascii', 'Dog/1'],
    ['empty (topic alias)', ''],
    ['two-byte characters', 'München/ä'],
    ['three-byte characters', 'preis/€'],
    ['surrogate pairs', 'emoji/😀/x'],
    ['long ascii', `a/${'b'.repeat(300)}`],
  ])('writes the same bytes as mqtt-packet for a topic with %s', (_name, topic) => {
    for (const [qos, retain] of [
      [0, false],
      [1, true],
    ] as const) {
      const payload = Buffer.from('payload')
      const ours = encodePublish(topic, payload, qos, retain, false, qos === 0 ? 0 : 300, null)
      const theirs = mqttPacket.generate({
        cmd: 'publish',
        topic,
        payload,
        qos,
        retain,
        dup: false,
        ...(qos > 0 ? { messageId: 300 } : {}),
      } as mqttPacket.IPublishPacket)
      expect(ours.equals(theirs)).toBe(true)
    }
  })

  it('writes remaining lengths of every size class', () => {
    for (const size of [0, 100, 200, 20_000, 3_000_000]) {
      const bytes = encodePublish('t', Buffer.alloc(size, 1), 0, false, false, 0, null)
      const parser = mqttPacket.parser({ protocolVersion: 4 })
      let got = -1
      parser.on('packet', (p) => {
        got = (p as mqttPacket.IPublishPacket).payload.length
      })
      parser.parse(bytes)
      expect(got).toBe(size)
    }
  })

  it('writes v5 acks with a reason code only when not 0', () => {
    expect([...encodeAck(PUBACK, 258, 0, true)]).toEqual([0x40, 2, 1, 2])
    expect([...encodeAck(PUBACK, 258, 0x87, true)]).toEqual([0x40, 3, 1, 2, 0x87])
    expect([...encodeAck(PUBACK, 258, 0x87, false)]).toEqual([0x40, 2, 1, 2])
  })

  it('writes v5 acks with a reason string and publishes with a topic alias that mqtt-packet reads back', () => {
    const parsed: mqttPacket.Packet[] = []
    const parser = mqttPacket.parser({ protocolVersion: 5 })
    parser.on('packet', (p) => parsed.push(p))
    parser.parse(encodeAck(PUBACK, 7, 0x90, true, reasonStringProperty('no such topic')))
    parser.parse(
      encodePublish(
        '',
        Buffer.from('x'),
        0,
        false,
        false,
        0,
        Buffer.concat([encodePublishProperties({ userProperties: { a: 'b' } }), topicAliasProperty(3)]),
      ),
    )
    expect(parsed[0]).toMatchObject({
      cmd: 'puback',
      messageId: 7,
      reasonCode: 0x90,
      properties: { reasonString: 'no such topic' },
    })
    expect(parsed[1]).toMatchObject({
      cmd: 'publish',
      topic: '',
      properties: { topicAlias: 3, userProperties: { a: 'b' } },
    })
  })
})

describe('parsePublish in place', () => {
  it('reads a PUBLISH between other packets of one chunk, and hands on its payload as a view', () => {
    const publish = mqttPacket.generate({
      cmd: 'publish',
      topic: 'a/b',
      payload: Buffer.from('hello'),
      qos: 1,
      messageId: 9,
      retain: false,
      dup: false,
    })
    const chunk = Buffer.concat([Buffer.from([0xc0, 0]), publish, Buffer.from([0xc0, 0])])
    const seen: [number, number, number][] = []
    const reader = new FrameReader(
      {
        onFrame: (b, s, o, e) => {
          expect(b).toBe(chunk) // offsets into the chunk itself, no view per packet
          seen.push([s, o, e])
        },
        onFrameError: (e) => {
          throw e
        },
      },
      1e9,
    )
    reader.push(chunk)
    expect(seen).toEqual([
      [0, 2, 2],
      [2, 4, 2 + publish.length],
      [2 + publish.length, 4 + publish.length, 4 + publish.length],
    ])
    const [start, body, end] = seen[1]!
    const parsed = parsePublish(chunk, start, body, end, false)
    if (!('topic' in parsed)) throw parsed
    expect(parsed).toMatchObject({ topic: 'a/b', qos: 1, packetId: 9 })
    expect(parsed.payload.toString()).toBe('hello')
    expect(parsed.payload.buffer).toBe(chunk.buffer)
  })

  it("keeps a publisher's last topic: the same bytes give the same string, other bytes are decoded and checked", () => {
    const topics = new TopicCache()
    const parse = (topic: Buffer) => {
      const bytes = Buffer.concat([
        Buffer.from([0x30, 2 + topic.length + 1, 0, topic.length]),
        topic,
        Buffer.from('x'),
      ])
      return parsePublish(bytes, 0, 2, bytes.length, false, topics)
    }
    const first = parse(Buffer.from('sensors/é1'))
    const again = parse(Buffer.from('sensors/é1'))
    if (!('topic' in first) || !('topic' in again)) throw new Error('not parsed')
    expect(first.topic).toBe('sensors/é1')
    expect(again.topic).toBe(first.topic)
    // same length, one byte different: decoded again
    expect(parse(Buffer.from('sensors/é2'))).toMatchObject({ topic: 'sensors/é2' })
    // same length as the cached topic, invalid UTF-8 (a lone continuation byte) or U+0000: still refused
    expect(parse(Buffer.from([...Buffer.from('sensors/'), 0x80, 0x32, 0x33]))).toBeInstanceOf(Error)
    expect(parse(Buffer.from([...Buffer.from('sensors/é'), 0]))).toBeInstanceOf(Error)
    expect(parse(Buffer.from('sensors/é2'))).toMatchObject({ topic: 'sensors/é2' })
    // longer than the cache keeps: decoded every time, right
    const long = `${'t/'.repeat(40)}end`
    expect(parse(Buffer.from(long))).toMatchObject({ topic: long })
    expect(parse(Buffer.from(long))).toMatchObject({ topic: long })
  })
})

describe('FrameReader', () => {
  function collect(chunks: Buffer[], max = 1e9) {
    const frames: string[] = []
    const errors: string[] = []
    const reader = new FrameReader(
      {
        onFrame: (b, s, o, e) => frames.push(`${b[s]}:${o - s}:${e - s}`),
        onFrameError: (e) => errors.push(e.code),
      },
      max,
    )
    for (const c of chunks) reader.push(c)
    return { frames, errors }
  }
  const ping = Buffer.from([0xc0, 0])
  const big = mqttPacket.generate({
    cmd: 'publish',
    topic: 't',
    payload: Buffer.alloc(300),
    qos: 0,
    dup: false,
    retain: false,
  })

  it('splits packets that share a chunk and joins packets split across chunks, byte by byte', () => {
    const all = Buffer.concat([ping, big, ping])
    const whole = collect([all]).frames
    const bytewise = collect([...all].map((b) => Buffer.from([b]))).frames
    expect(whole).toEqual(['192:2:2', `48:3:${big.length}`, '192:2:2'])
    expect(bytewise).toEqual(whole)
  })

  it('refuses a packet above the maximum size from its header', () => {
    expect(collect([big.subarray(0, 3)], 100).errors).toEqual(['MQTT_PACKET_TOO_LARGE'])
  })

  it('refuses a fourth remaining-length byte with its continuation bit at once, without waiting for a fifth', () => {
    // found by the fuzzer (pnpm fuzz): the reader waited for the next byte, so the connection hung
    expect(collect([Buffer.from([0xe0, 0x80, 0x80, 0x80, 0x80])]).errors).toEqual(['MQTT_MALFORMED_PACKET'])
    expect(collect([...[0x30, 0xff, 0xff, 0xff, 0xff]].map((b) => Buffer.from([b]))).errors).toEqual([
      'MQTT_MALFORMED_PACKET',
    ])
  })

  it('refuses a remaining length of five bytes', () => {
    expect(collect([Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])]).errors).toEqual([
      'MQTT_MALFORMED_PACKET',
    ])
  })
})

describe('generateWithin', () => {
  it('writes packets without filling the mqtt-packet number cache (65,536 Buffers, +15 MB RSS)', () => {
    const numbers = createRequire(import.meta.url)('mqtt-packet/numbers.js') as {
      cache: Record<string, unknown>
    }
    // this file's own mqttPacket.generate calls (which the broker never makes) may have filled it: the
    // broker loads mqtt-packet on first use and turns the cache off then
    for (const key of Object.keys(numbers.cache)) delete numbers.cache[key]
    const suback = { cmd: 'suback', messageId: 300, granted: [0, 1] } as const
    const bytes = generateWithin({ ...suback, granted: [...suback.granted] }, 4, 1024)
    expect(Object.keys(numbers.cache)).toHaveLength(0)
    expect([...bytes]).toEqual([0x90, 4, 1, 44, 0, 1])
  })
})
