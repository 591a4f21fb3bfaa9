import { describe, expect, it, vi } from 'vitest'
import {
  type Packet,
  pairClient,
  type RawClient,
  startBroker,
  useBrokerFixture,
  useMqttJsClients,
} from './helpers.js'

const fx = useBrokerFixture()
const { make } = fx

async function subscribe(
  c: RawClient,
  topic: string,
  qos: 0 | 1 | 2 = 0,
  extra: Record<string, unknown> = {},
) {
  c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos, ...extra }] } as Packet)
  return (await c.next('suback')).granted
}

function publish(
  c: RawClient,
  topic: string,
  payload: string,
  qos: 0 | 1 = 0,
  messageId = 1,
  retain = false,
) {
  c.send({ cmd: 'publish', topic, payload, qos, messageId, retain, dup: false } as Packet)
}

/** Collects PUBLISH packets as they arrive (payloads as strings). */
function received(c: RawClient): () => string[] {
  return () =>
    c.packets.filter((p) => p.cmd === 'publish').map((p) => String((p as { payload: Buffer }).payload))
}

/**
 * A barrier: `p` publishes a QoS 0 sentinel on `topic` (which each of `clients` subscribed to, not shared),
 * and each client's copy is awaited and removed. One connection's messages are written in order, so
 * whatever the broker sent a client before the sentinel has arrived by then.
 */
async function sentinel(p: RawClient, topic: string, clients: RawClient[]): Promise<void> {
  publish(p, topic, 'sentinel')
  await Promise.all(clients.map((c) => c.next('publish', (m) => m.topic === topic)))
}

describe('shared subscriptions ($share/{group}/{filter})', () => {
  it('says so in CONNACK and gives each message to one member, round robin across connections', async () => {
    make()
    const members = [pairClient(fx.broker, 5), pairClient(fx.broker, 5), pairClient(fx.broker, 4)]
    const ack = await members[0]!.connect()
    expect(ack.properties?.sharedSubscriptionAvailable).toBe(true)
    await members[1]!.connect()
    await members[2]!.connect() // v3.1.1 may use $share too
    for (const m of members) expect(await subscribe(m, '$share/g1/jobs/+')).toEqual([0])
    const other = pairClient(fx.broker, 5)
    await other.connect()
    await subscribe(other, '$share/g2/jobs/+') // another group gets every message too
    for (const c of [...members, other]) await subscribe(c, 'jobs-end')
    const p = pairClient(fx.broker, 5)
    await p.connect()
    for (let i = 0; i < 9; i++) publish(p, 'jobs/x', String(i))
    await sentinel(p, 'jobs-end', [...members, other])
    const got = members.map((m) => received(m)())
    expect(got.map((g) => g.length)).toEqual([3, 3, 3])
    expect(got.flat().sort()).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8'])
    expect(received(other)()).toHaveLength(9)
  })

  it('sends no retained records on a shared subscribe (MQTT 5 section 4.8.2)', async () => {
    make()
    const p = pairClient(fx.broker, 5)
    await p.connect()
    publish(p, 'held/a', 'kept', 1, 1, true)
    await p.next('puback')
    const plain = pairClient(fx.broker, 5)
    await plain.connect()
    await subscribe(plain, 'held/#')
    expect((await plain.next('publish')).payload.toString()).toBe('kept')
    const s = pairClient(fx.broker, 5)
    await s.connect()
    await subscribe(s, '$share/g/held/#', 0, { rh: 0 })
    publish(p, 'held/b', 'live')
    const got = await s.next('publish')
    expect(got.payload.toString()).toBe('live')
    expect(got.retain).toBe(false)
  })

  it('skips a member whose in-flight window is full', async () => {
    make()
    const slow = pairClient(fx.broker, 5)
    await slow.connect({ properties: { receiveMaximum: 1 } })
    await subscribe(slow, '$share/w/tasks', 1)
    const fast = pairClient(fx.broker, 5)
    await fast.connect()
    await subscribe(fast, '$share/w/tasks', 1)
    // QoS 0 is outside the in-flight window: slow gets this sentinel with its window full
    await subscribe(slow, 'tasks-end')
    const p = pairClient(fx.broker, 5)
    await p.connect()
    for (let i = 1; i <= 5; i++) {
      publish(p, 'tasks', `t${i}`, 1, i)
      await p.next('puback')
    }
    // slow never acknowledges: after its first message its window (1) is full, the rest go to fast.
    await vi.waitFor(() => expect(received(fast)().sort()).toEqual(['t2', 't3', 't4', 't5']))
    await sentinel(p, 'tasks-end', [slow])
    expect(received(slow)()).toEqual(['t1'])
  })

  it('hands a disconnected member’s unacknowledged QoS 1 messages to another member', async () => {
    make()
    const a = pairClient(fx.broker, 5)
    await a.connect({ clientId: 'member-a' })
    await subscribe(a, '$share/h/orders/#', 1)
    const b = pairClient(fx.broker, 5)
    await b.connect({ clientId: 'member-b' })
    await subscribe(b, '$share/h/orders/#', 1)
    const p = pairClient(fx.broker, 5)
    await p.connect()
    publish(p, 'orders/1', 'o1', 1, 1)
    publish(p, 'orders/2', 'o2', 1, 2)
    await p.next('puback')
    await p.next('puback')
    const aGot = await a.next('publish')
    const bGot = await b.next('publish')
    expect([aGot.payload.toString(), bGot.payload.toString()].sort()).toEqual(['o1', 'o2'])
    // b acknowledges, a drops without acknowledging: a's message goes to b.
    b.send({ cmd: 'puback', messageId: bGot.messageId! })
    a.end()
    const moved = await b.next('publish')
    expect(moved.payload.toString()).toBe(aGot.payload.toString())
    expect(moved.qos).toBe(1)
  })

  it('treats No Local on a shared subscription as a protocol error [MQTT-3.8.3-4]', async () => {
    make()
    const c = pairClient(fx.broker, 5)
    await c.connect()
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$share/g/x', qos: 0, nl: true }] })
    const d = await c.next('disconnect')
    expect(d.reasonCode).toBe(0x82)
    await c.waitClosed()
  })

  it('refuses a malformed share name with 0x8F', async () => {
    make()
    const c = pairClient(fx.broker, 5)
    await c.connect()
    expect(await subscribe(c, '$share/g+/x')).toEqual([0x8f])
    expect(await subscribe(c, '$share/g')).toEqual([0x8f])
  })
})

describe('shared subscriptions with MQTT.js v5', () => {
  const mqttJs = useMqttJsClients()

  it('balances QoS 1 messages over two MQTT.js clients, each message once', async () => {
    const tb = await startBroker({}, fx.rt)
    try {
      const connect = () => mqttJs.connect(tb, { protocolVersion: 5 })
      const [a, b, p] = [await connect(), await connect(), await connect()]
      const got: string[][] = [[], []]
      const ends = [0, 0]
      a.on('message', (t, payload) => (t === 'bal-end' ? ends[0]!++ : got[0]!.push(payload.toString())))
      b.on('message', (t, payload) => (t === 'bal-end' ? ends[1]!++ : got[1]!.push(payload.toString())))
      await a.subscribeAsync(['$share/js/bal/#', 'bal-end'], { qos: 1 })
      await b.subscribeAsync(['$share/js/bal/#', 'bal-end'], { qos: 1 })
      for (let i = 0; i < 6; i++) await p.publishAsync(`bal/${i}`, `m${i}`, { qos: 1 })
      // a sentinel both get, logged after the six: a duplicate would have arrived before it
      await p.publishAsync('bal-end', 'sentinel', { qos: 1 })
      await vi.waitFor(() => expect(ends).toEqual([1, 1]))
      expect(got[0]!.length).toBe(3)
      expect(got[1]!.length).toBe(3)
      expect([...got[0]!, ...got[1]!].sort()).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5'])
    } finally {
      await mqttJs.endAll()
      await tb.close()
    }
  })
})
