import { describe, expect, it } from 'vitest'
import { pairClient, useBrokerFixture } from './helpers.js'

const fx = useBrokerFixture()

/** Longer than a storage key may be (LMDB's limit is under 2 KB). */
const TOO_LONG = 'c'.repeat(2000)
/** Fits as a key alone, not with a packet id beside it ([clientId, packetId] keys of in-flight messages). */
const ALMOST = 'a'.repeat(1895)

describe('a client id too long for a storage key', () => {
  it('gets CONNACK 0x85 with a clear reason for a durable v5 session', async () => {
    fx.make()
    for (const clientId of [TOO_LONG, ALMOST]) {
      const c = pairClient(fx.broker, 5)
      const ack = await c.connect({ clientId, properties: { sessionExpiryInterval: 60 } })
      expect(ack.reasonCode).toBe(0x85)
      expect(ack.properties?.reasonString).toMatch(/client identifier.*too long/)
      await c.waitClosed()
    }
  })

  it('gets CONNACK 0x02 for a 3.1.1 persistent session', async () => {
    fx.make()
    const c = pairClient(fx.broker)
    const ack = await c.connect({ clientId: TOO_LONG, clean: false })
    expect(ack.returnCode).toBe(0x02)
    await c.waitClosed()
  })

  it('gets CONNACK 0x85 when the connection has a will to persist', async () => {
    fx.make()
    const c = pairClient(fx.broker, 5)
    const ack = await c.connect({
      clientId: TOO_LONG,
      will: { topic: 'w/long', payload: Buffer.from('gone'), qos: 0, retain: false },
    })
    expect(ack.reasonCode).toBe(0x85)
  })

  it('is accepted for a clean session without a will: nothing is stored under it', async () => {
    fx.make()
    const c = pairClient(fx.broker, 5)
    expect((await c.connect({ clientId: TOO_LONG })).reasonCode).toBe(0)
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'long/#', qos: 1 }] })
    await c.next('suback')
    c.send({ cmd: 'publish', topic: 'long/x', payload: 'y', qos: 1, messageId: 2, retain: false, dup: false })
    await c.next('puback')
    expect((await c.next('publish')).payload.toString()).toBe('y')
  })
})
