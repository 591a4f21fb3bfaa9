/**
 * The subscription hand-off is exact: current state, then exactly the events committed after it, each once;
 * overlapping subscriptions of one client give one copy; packets of one client are handled in order.
 */
import { waitFor } from '@proj/test-utils'
import mqttPacket from 'mqtt-packet'
import { afterAll, describe, expect, it } from 'vitest'
import { RawClient, useTcpBroker } from './helpers.js'

const fx = useTcpBroker('file')

const clients: RawClient[] = []
afterAll(() => {
  for (const c of clients) c.end()
})
async function raw(version: 4 | 5 = 4): Promise<RawClient> {
  const c = await RawClient.tcp(fx.tb.port, version)
  clients.push(c)
  return c
}

/** The helper of Mosquitto's 03-pattern-matching: one retained QoS 0 publish, then the socket closes. */
async function helper(topic: string, payload: string): Promise<void> {
  const h = await raw()
  await h.connect({ clientId: 'test-helper' })
  h.send({ cmd: 'publish', topic, payload, qos: 0, retain: true, dup: false })
  h.end()
}

/** Clears a retained message the way a client can be sure of it: empty retained publish, PINGREQ barrier. */
async function clear(topic: string): Promise<void> {
  const c = await raw()
  await c.connect({ clientId: 'test-clear' })
  c.send({ cmd: 'publish', topic, payload: Buffer.alloc(0), qos: 0, retain: true, dup: false })
  c.send({ cmd: 'pingreq' })
  await c.next('pingresp')
  c.end()
}

/** One sub-test of Mosquitto's 03-pattern-matching (written anew here), against one long-lived broker. */
async function patternTest(sub: string, pub: string, round: number): Promise<void> {
  const c = await raw()
  await c.connect({ clientId: 'pattern-sub-test', clean: true })
  c.send({ cmd: 'subscribe', messageId: 312, subscriptions: [{ topic: sub, qos: 0 }] })
  await c.next('suback')
  await helper(pub, 'message')
  const live = await c.next('publish')
  expect([round, live.topic, live.payload.toString(), live.retain]).toEqual([round, pub, 'message', false])
  c.send({ cmd: 'unsubscribe', messageId: 234, unsubscriptions: [sub] })
  await c.next('unsuback')
  c.send({ cmd: 'subscribe', messageId: 312, subscriptions: [{ topic: sub, qos: 0 }] })
  await c.next('suback')
  const retained = await c.next('publish')
  expect([round, retained.topic, retained.payload.toString(), retained.retain]).toEqual([
    round,
    pub,
    'message',
    true,
  ])
  c.end()
  await c.closedPromise
  await clear(pub)
}

describe('subscription hand-off', () => {
  it('a new subscription never gets a delete that was already committed before it (Mosquitto 03-pattern-matching)', async () => {
    // Sub-tests 4 and 5 share their topic: the clearing delete of 4 must not reach 5's subscriber.
    for (let round = 0; round < 15; round++) {
      await patternTest('foo/+/baz', 'foo/bar/baz', round)
      await patternTest('foo/+/baz/#', 'foo/bar/baz', round)
    }
  }, 60_000)
})

describe('PINGREQ is a barrier', () => {
  it('PINGRESP comes once the QoS 0 publishes before it are committed (a retained delete is visible)', async () => {
    const c = await raw()
    await c.connect({ clientId: 'barrier' })
    for (let round = 0; round < 10; round++) {
      const topic = `barrier/${round}`
      c.send({ cmd: 'publish', topic, payload: 'v', qos: 1, messageId: 1, retain: true, dup: false })
      await c.next('puback')
      c.send({ cmd: 'publish', topic, payload: Buffer.alloc(0), qos: 0, retain: true, dup: false })
      c.send({ cmd: 'pingreq' })
      await c.next('pingresp')
      expect([round, await fx.tb.runtime.get(topic, { user: null })]).toEqual([round, undefined])
    }
  })
})

describe('overlapping subscriptions of one client', () => {
  it('v5: one copy at the highest QoS with every subscription identifier, SUBSCRIBE and PUBLISH pipelined', async () => {
    for (let round = 0; round < 20; round++) {
      const c = await raw(5)
      await c.connect({ clientId: `ov5-${round}`, protocolVersion: 5 })
      const topic = `ov5/${round}/TopicA`
      c.send({
        cmd: 'subscribe',
        messageId: 1,
        subscriptions: [{ topic, qos: 1 }],
        properties: { subscriptionIdentifier: 2 },
      })
      c.send({
        cmd: 'subscribe',
        messageId: 2,
        subscriptions: [{ topic: `${topic}/#`, qos: 2 }],
        properties: { subscriptionIdentifier: 3 },
      })
      c.send({ cmd: 'publish', topic, payload: 'x', qos: 0, retain: false, dup: false })
      // A sentinel on a topic only the second filter matches: everything before it has arrived.
      c.send({ cmd: 'publish', topic: `${topic}/end`, payload: 'end', qos: 0, retain: false, dup: false })
      await c.next('publish', (p) => p.topic === `${topic}/end`)
      const copies = c.packets.filter((p) => p.cmd === 'publish' && p.topic === topic)
      expect(copies.length, `round ${round}`).toBe(1)
      const p = copies[0] as Extract<(typeof copies)[0], { cmd: 'publish' }>
      const ids = p.properties?.subscriptionIdentifier
      expect([...(Array.isArray(ids) ? ids : [ids])].sort()).toEqual([2, 3])
      c.end()
    }
  }, 60_000)

  it('3.1.1: x/# at QoS 0 and x/y at QoS 1 give one PUBLISH at QoS 1', async () => {
    for (let round = 0; round < 20; round++) {
      const c = await raw(4)
      await c.connect({ clientId: `ov4-${round}` })
      const base = `ov4/${round}/x`
      c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `${base}/#`, qos: 0 }] })
      c.send({ cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: `${base}/y`, qos: 1 }] })
      c.send({
        cmd: 'publish',
        topic: `${base}/y`,
        payload: 'y',
        qos: 1,
        messageId: 7,
        retain: false,
        dup: false,
      })
      // The sentinel is QoS 1 as well: logged after the first, so delivered after it.
      c.send({
        cmd: 'publish',
        topic: `${base}/end`,
        payload: 'end',
        qos: 1,
        messageId: 8,
        retain: false,
        dup: false,
      })
      await c.next('publish', (p) => p.topic === `${base}/end`)
      const copies = c.packets.filter((p) => p.cmd === 'publish' && p.topic === `${base}/y`)
      expect(
        copies.map((p) => (p as { qos: number }).qos),
        `round ${round}`,
      ).toEqual([1])
      c.end()
    }
  }, 60_000)
})

describe('overlapping subscriptions of a durable session', () => {
  it('catch-up after a reconnect sends one copy per message, with both identifiers', async () => {
    const props = { sessionExpiryInterval: 300 }
    const c1 = await raw(5)
    await c1.connect({ clientId: 'ov-durable', protocolVersion: 5, clean: true, properties: props })
    c1.send({
      cmd: 'subscribe',
      messageId: 1,
      subscriptions: [{ topic: 'ovd/a', qos: 1 }],
      properties: { subscriptionIdentifier: 2 },
    })
    await c1.next('suback')
    c1.send({
      cmd: 'subscribe',
      messageId: 2,
      subscriptions: [{ topic: 'ovd/#', qos: 2 }],
      properties: { subscriptionIdentifier: 3 },
    })
    await c1.next('suback')
    c1.end()
    await waitFor(() => !fx.tb.broker.listClients().some((c) => c.clientId === 'ov-durable'))
    const pub = await raw(4)
    await pub.connect({ clientId: 'ov-durable-pub' })
    for (let i = 0; i < 3; i++) {
      pub.send({
        cmd: 'publish',
        topic: 'ovd/a',
        payload: `m${i}`,
        qos: 1,
        messageId: i + 1,
        retain: false,
        dup: false,
      })
      await pub.next('puback')
    }
    const c2 = await raw(5)
    const ack = await c2.connect({
      clientId: 'ov-durable',
      protocolVersion: 5,
      clean: false,
      properties: props,
    })
    expect(ack.sessionPresent).toBe(true)
    pub.send({
      cmd: 'publish',
      topic: 'ovd/end',
      payload: 'end',
      qos: 1,
      messageId: 9,
      retain: false,
      dup: false,
    })
    await c2.next('publish', (p) => p.topic === 'ovd/end')
    const copies = c2.packets.filter((p) => p.cmd === 'publish' && p.topic === 'ovd/a') as Extract<
      (typeof c2.packets)[0],
      { cmd: 'publish' }
    >[]
    expect(copies.map((p) => p.payload.toString())).toEqual(['m0', 'm1', 'm2'])
    for (const p of copies) {
      const ids = p.properties?.subscriptionIdentifier
      expect([...(Array.isArray(ids) ? ids : [ids])].sort()).toEqual([2, 3])
    }
  })
})

describe('packets of one client are processed in order', () => {
  it('a PUBLISH right after SUBSCRIBE (no wait for SUBACK) is matched against that subscription', async () => {
    for (let round = 0; round < 20; round++) {
      const c = await raw(4)
      await c.connect({ clientId: `order-${round}` })
      const topic = `order/${round}`
      for (const qos of [0, 1, 2] as const) {
        c.send({ cmd: 'subscribe', messageId: 10 + qos, subscriptions: [{ topic: `${topic}/${qos}`, qos }] })
        c.send({
          cmd: 'publish',
          topic: `${topic}/${qos}`,
          payload: `m${qos}`,
          qos,
          messageId: 20 + qos,
          retain: false,
          dup: false,
        })
        const got = await c.next('publish', (p) => p.topic === `${topic}/${qos}`)
        expect([round, got.payload.toString()]).toEqual([round, `m${qos}`])
      }
      // A retained publish right behind the SUBSCRIBE: once (in the snapshot or live, never both).
      c.send({ cmd: 'subscribe', messageId: 30, subscriptions: [{ topic: `${topic}/r/#`, qos: 1 }] })
      c.send({
        cmd: 'publish',
        topic: `${topic}/r/a`,
        payload: 'r',
        qos: 1,
        messageId: 31,
        retain: true,
        dup: false,
      })
      c.send({
        cmd: 'publish',
        topic: `${topic}/r/end`,
        payload: 'e',
        qos: 1,
        messageId: 32,
        retain: false,
        dup: false,
      })
      await c.next('publish', (p) => p.topic === `${topic}/r/end`)
      expect(c.packets.filter((p) => p.cmd === 'publish' && p.topic === `${topic}/r/a`).length).toBe(1)
      c.end()
    }
  }, 60_000)
})

describe('packets pipelined behind CONNECT', () => {
  it.each([
    [4, true],
    [4, false],
    [5, true],
    [5, false],
  ] as const)(
    'v%s clean %s: CONNECT, SUBSCRIBE and PUBLISH in one write are handled in order',
    async (v, clean) => {
      for (let round = 0; round < 5; round++) {
        const c = await raw(v)
        const gen = (p: object) => mqttPacket.generate(p as mqttPacket.Packet, { protocolVersion: v })
        const topic = `pipe/${v}/${clean}/${round}`
        const bytes = [
          gen({
            cmd: 'connect',
            protocolId: 'MQTT',
            protocolVersion: v,
            clean,
            clientId: `pipe-${v}-${clean}-${round}`,
            keepalive: 0,
            ...(v === 5 && !clean ? { properties: { sessionExpiryInterval: 60 } } : {}),
          }),
        ]
        for (const qos of [0, 1, 2]) {
          bytes.push(
            gen({
              cmd: 'subscribe',
              messageId: 10 + qos,
              subscriptions: [{ topic: `${topic}/${qos}`, qos }],
            }),
          )
          bytes.push(
            gen({
              cmd: 'publish',
              topic: `${topic}/${qos}`,
              payload: `m${qos}`,
              qos,
              messageId: 20 + qos,
              retain: false,
              dup: false,
            }),
          )
        }
        c.send(Buffer.concat(bytes))
        for (const qos of [0, 1, 2]) {
          const got = await c.next('publish', (p) => p.topic === `${topic}/${qos}`)
          expect(got.payload.toString()).toBe(`m${qos}`)
        }
        c.end()
      }
    },
  )
})
