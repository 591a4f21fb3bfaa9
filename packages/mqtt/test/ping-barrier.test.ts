import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { openTestRuntime, pairClient, type TestRuntime, useBrokerFixture } from './helpers.js'

const fx = useBrokerFixture()
let rt: TestRuntime
beforeAll(async () => {
  rt = await openTestRuntime()
})
afterAll(async () => {
  await rt.close()
})

describe('PINGREQ as a barrier behind QoS 1 publishes', () => {
  it.each([4, 5] as const)(
    'v%s: PINGRESP leaves after the PUBACKs of every publish before it, and what they stored is visible',
    async (version) => {
      const broker = fx.make({}, rt)
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

  it('answers a PINGREQ at once when nothing is pending, and behind a QoS 0 retained publish', async () => {
    const broker = fx.make({}, rt)
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
