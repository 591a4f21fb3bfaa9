import { describe, expect, it, vi } from 'vitest'
import { pairClient, useBrokerFixture } from './helpers.js'

const fx = useBrokerFixture()

describe('PINGREQ as a barrier behind QoS 1 publishes', () => {
  it.each([4, 5] as const)(
    'v%s: PINGRESP leaves after the PUBACKs of every publish before it, and what they stored is visible',
    async (version) => {
      const broker = fx.make()
      const c = pairClient(broker, version)
      await c.connect({ clientId: `barrier-${version}` })
      const n = 50
      for (let i = 1; i <= n; i++)
        c.send({
          cmd: 'publish',
          topic: `barrier/${version}/${i}`,
          payload: `v${i}`,
          qos: 1,
          messageId: i,
          retain: true,
          dup: false,
        })
      c.send({ cmd: 'pingreq' })
      await vi.waitFor(() => expect(c.packets.some((p) => p.cmd === 'pingresp')).toBe(true))
      const order = c.packets.map((p) => (p.cmd === 'puback' ? p.messageId : p.cmd))
      expect(order).toEqual([...Array.from({ length: n }, (_, i) => i + 1), 'pingresp'])
      // committed before PINGRESP: a subscription made now gets every retained message
      const sub = pairClient(broker, version)
      await sub.connect({ clientId: `barrier-sub-${version}` })
      sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `barrier/${version}/#`, qos: 0 }] })
      await sub.next('suback')
      for (let i = 0; i < n; i++) await sub.next('publish')
    },
  )

  it('keeps the PUBACK order over thousands of QoS 1 publishes that keep coming while earlier ones commit', async () => {
    // rounds sent while the ones before are still being committed, so acknowledgements are released with
    // later publishes pending (the queue never drains) well past the point where it is compacted
    const broker = fx.make()
    const c = pairClient(broker)
    await c.connect({ clientId: 'barrier-burst' })
    const n = 4000
    const acked = () => c.packets.filter((p) => p.cmd === 'puback').length
    for (let sent = 0; sent < n; ) {
      for (let i = 0; i < 10; i++) {
        sent++
        c.send({
          cmd: 'publish',
          topic: 'barrier/burst',
          payload: `m${sent}`,
          qos: 1,
          messageId: sent,
          dup: false,
          retain: false,
        })
      }
      // a turn for the broker between rounds; at most 800 unacknowledged (under its back-pressure point)
      await new Promise((resolve) => setImmediate(resolve))
      const until = sent - 800
      if (acked() < until)
        await vi.waitFor(() => expect(acked()).toBeGreaterThanOrEqual(until), { timeout: 20_000 })
    }
    c.send({ cmd: 'pingreq' })
    await vi.waitFor(() => expect(c.packets.some((p) => p.cmd === 'pingresp')).toBe(true), {
      timeout: 20_000,
    })
    const order = c.packets.map((p) => (p.cmd === 'puback' ? p.messageId : p.cmd))
    expect(order).toEqual([...Array.from({ length: n }, (_, i) => i + 1), 'pingresp'])
  })

  it('answers a PINGREQ at once when nothing is pending, and behind a QoS 0 retained publish', async () => {
    const broker = fx.make()
    const c = pairClient(broker)
    await c.connect({ clientId: 'barrier-idle' })
    c.send({ cmd: 'pingreq' })
    await c.next('pingresp')
    c.send({ cmd: 'publish', topic: 'barrier/q0', payload: 'x', qos: 0, retain: true, dup: false })
    c.send({
      cmd: 'publish',
      topic: 'barrier/q1',
      payload: 'y',
      qos: 1,
      messageId: 7,
      retain: true,
      dup: false,
    })
    c.send({ cmd: 'pingreq' })
    await vi.waitFor(() => expect(c.packets.some((p) => p.cmd === 'pingresp')).toBe(true))
    expect(c.packets.map((p) => p.cmd)).toEqual(['puback', 'pingresp'])
    const sub = pairClient(broker)
    await sub.connect({ clientId: 'barrier-idle-sub' })
    sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'barrier/+', qos: 0 }] })
    await sub.next('suback')
    const got = [(await sub.next('publish')).topic, (await sub.next('publish')).topic].sort()
    expect(got).toEqual(['barrier/q0', 'barrier/q1'])
  })
})
