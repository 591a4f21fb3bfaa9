import { describe, expect, it, onTestFinished } from 'vitest'
import { pairClient, RawClient, startBroker, useBrokerFixture } from './helpers.js'

const fx = useBrokerFixture()
const { make } = fx

/** A control client's QoS 1 round trip on its own connection: the broker (and the process) still serves. */
async function roundTrip(c: RawClient, topic: string): Promise<void> {
  c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] })
  await c.next('suback')
  c.send({ cmd: 'publish', topic, payload: 'ping', qos: 1, messageId: 2, retain: false, dup: false })
  await c.next('puback')
  expect((await c.next('publish')).payload.toString()).toBe('ping')
}

describe('empty SUBSCRIBE and UNSUBSCRIBE', () => {
  it('closes a 3.1.1 connection that sends a SUBSCRIBE with no topic filters [MQTT-3.8.3-3]', async () => {
    const tb = await startBroker()
    onTestFinished(() => tb.close())
    const bad = await RawClient.tcp(tb.port)
    await bad.connect()
    bad.send(Buffer.from([0x82, 0x02, 0x00, 0x01]))
    await bad.waitClosed()
    expect(bad.packets.filter((p) => p.cmd === 'suback')).toEqual([])
    await roundTrip(await connected(tb.port), 'empty/sub3')
  })

  it('answers a v5 SUBSCRIBE with no topic filters with DISCONNECT 0x82 [MQTT-3.8.3-3]', async () => {
    const tb = await startBroker()
    onTestFinished(() => tb.close())
    const bad = await RawClient.tcp(tb.port, 5)
    await bad.connect()
    // Packet id 1, property length 0, no filters.
    bad.send(Buffer.from([0x82, 0x03, 0x00, 0x01, 0x00]))
    expect((await bad.next('disconnect')).reasonCode).toBe(0x82)
    await bad.waitClosed()
    await roundTrip(await connected(tb.port), 'empty/sub5')
  })

  it('answers a v5 UNSUBSCRIBE with no topic filters with DISCONNECT 0x82 [MQTT-3.10.3-2]', async () => {
    const tb = await startBroker()
    onTestFinished(() => tb.close())
    const bad = await RawClient.tcp(tb.port, 5)
    await bad.connect({ clientId: 'empty-unsub', clean: false, properties: { sessionExpiryInterval: 60 } })
    bad.send(Buffer.from([0xa2, 0x03, 0x00, 0x01, 0x00]))
    expect((await bad.next('disconnect')).reasonCode).toBe(0x82)
    await bad.waitClosed()
    await roundTrip(await connected(tb.port), 'empty/unsub5')
  })

  it('closes a 3.1.1 connection that sends an UNSUBSCRIBE with no topic filters [MQTT-3.10.3-2]', async () => {
    make()
    const bad = pairClient(fx.broker)
    await bad.connect()
    bad.send(Buffer.from([0xa2, 0x02, 0x00, 0x01]))
    await bad.waitClosed()
    expect(bad.packets.filter((p) => p.cmd === 'unsuback')).toEqual([])
  })
})

describe('properties that must fit', () => {
  const filters = Array.from({ length: 3000 }, (_, i) => ({ topic: `bad/#/filter-${i}`, qos: 0 as const }))

  it('answers thousands of invalid filters with a complete SUBACK whose reason string fits 65,535 bytes', async () => {
    make()
    const c = pairClient(fx.broker, 5)
    await c.connect()
    c.send({ cmd: 'subscribe', messageId: 7, subscriptions: filters })
    const ack = await c.next('suback')
    expect(ack.messageId).toBe(7)
    expect(ack.granted).toHaveLength(filters.length)
    expect(new Set(ack.granted)).toEqual(new Set([0x8f]))
    const reason = ack.properties?.reasonString ?? ''
    expect(reason.length).toBeGreaterThan(0)
    expect(Buffer.byteLength(reason)).toBeLessThanOrEqual(65535)
    // The connection keeps working.
    c.send({ cmd: 'pingreq' })
    await c.next('pingresp')
  })

  it('drops the reason string first when the SUBACK would exceed the client maximum packet size', async () => {
    make()
    const c = pairClient(fx.broker, 5)
    // Room for the 3000 reason codes and the header, not for a reason string.
    await c.connect({ properties: { maximumPacketSize: 3100 } })
    c.send({ cmd: 'subscribe', messageId: 8, subscriptions: filters })
    const ack = await c.next('suback')
    expect(ack.granted).toHaveLength(filters.length)
    expect(ack.properties?.reasonString).toBeUndefined()
  })

  it('keeps a multi-byte reason string valid UTF-8 when it is shortened', async () => {
    make()
    const c = pairClient(fx.broker, 5)
    await c.connect()
    const wide = Array.from({ length: 2000 }, (_, i) => ({ topic: `äöü€/#/${i}`, qos: 0 as const }))
    c.send({ cmd: 'subscribe', messageId: 9, subscriptions: wide })
    const ack = await c.next('suback')
    expect(ack.granted).toHaveLength(wide.length)
    const reason = ack.properties?.reasonString ?? ''
    const bytes = Buffer.from(reason)
    expect(bytes.length).toBeLessThanOrEqual(65535)
    expect(reason).not.toContain('\ufffd')
  })
})

async function connected(port: number): Promise<RawClient> {
  const c = await RawClient.tcp(port)
  await c.connect()
  return c
}
