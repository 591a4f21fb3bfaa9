import { describe, expect, it } from 'vitest'
import { duplexPair, pairClient, useBrokerFixture } from './helpers.js'

const fx = useBrokerFixture()
const { make } = fx

// What an idle connection holds is private state: these white-box views name the fields they read.
interface SessionView {
  subs: Map<string, unknown> | null
  out: { inflightMap: Map<number, unknown> | null; queue: unknown[] | null; outbox: unknown[] | null } | null
  rec: object | null
}
interface ConnectionView {
  clientId: string
  router: { inboundFlows: object | null; subscribeFlows: object | null } | null
  will: object | null
}

function sessionOf(clientId: string): SessionView {
  const s = (fx.broker as unknown as { sessions: { get(id: string): unknown } }).sessions.get(clientId)
  if (s === undefined) throw new Error(`no session ${clientId}`)
  return s as SessionView
}

function connectionOf(clientId: string): ConnectionView {
  const conns = (fx.broker as unknown as { connections: Set<ConnectionView> }).connections
  const c = [...conns].find((x) => x.clientId === clientId)
  if (c === undefined) throw new Error(`no connection ${clientId}`)
  return c
}

describe('an idle connection', () => {
  it('shares the broker stream listeners with every other connection (no closures of its own)', () => {
    const broker = make()
    const [, a] = duplexPair()
    const [, b] = duplexPair()
    broker.handle(a, { transport: 'tcp' })
    broker.handle(b, { transport: 'tcp' })
    for (const event of ['data', 'error', 'end', 'close']) {
      expect(a.listeners(event)).toHaveLength(1)
      expect(a.listeners(event)[0]).toBe(b.listeners(event)[0])
    }
  })

  it('still closes when its stream ends, through the shared listener', async () => {
    make()
    const c = pairClient(fx.broker)
    await c.connect({ clientId: 'ends' })
    expect(fx.broker.connectionCount).toBe(1)
    c.stream.end()
    await c.waitClosed()
    expect(fx.broker.connectionCount).toBe(0)
  })

  it('holds no subscription map, outbound flow, in-flight map or publish flows until it needs them', async () => {
    make()
    const sub = pairClient(fx.broker)
    await sub.connect({ clientId: 'lazy' })
    const session = sessionOf('lazy')
    expect(session.subs).toBeNull()
    expect(session.out).toBeNull()
    expect(session.rec).toBeNull() // a clean session writes no record
    expect(connectionOf('lazy').router).toMatchObject({ inboundFlows: null, subscribeFlows: null })
    expect(connectionOf('lazy').will).toBeNull()

    // PINGREQ is answered without making the inbound publish flows.
    sub.send({ cmd: 'pingreq' })
    await sub.next('pingresp')
    expect(connectionOf('lazy').router?.inboundFlows).toBeNull()

    sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'idle/t', qos: 1 }] })
    await sub.next('suback')
    expect(session.subs?.size).toBe(1)
    expect(connectionOf('lazy').router?.subscribeFlows).not.toBeNull()

    // A QoS 0 message: the outbound flow exists, the in-flight map still does not.
    const pub = pairClient(fx.broker)
    await pub.connect({ clientId: 'lazy-pub' })
    pub.send({
      cmd: 'publish',
      topic: 'idle/t',
      payload: Buffer.from('q0'),
      qos: 0,
      retain: false,
      dup: false,
    })
    const m0 = await sub.next('publish')
    expect(m0.qos).toBe(0)
    expect(session.out).not.toBeNull()
    expect(session.out?.inflightMap).toBeNull()
    expect(session.out?.queue).toBeNull()
    expect(connectionOf('lazy-pub').router?.inboundFlows).not.toBeNull()

    // The first QoS 1 message makes the in-flight map; its PUBACK empties it.
    pub.send({
      cmd: 'publish',
      topic: 'idle/t',
      payload: Buffer.from('q1'),
      qos: 1,
      messageId: 7,
      retain: false,
      dup: false,
    })
    await pub.next('puback')
    const m1 = await sub.next('publish')
    expect(m1.qos).toBe(1)
    expect(session.out?.inflightMap?.size).toBe(1)
    sub.send({ cmd: 'puback', messageId: m1.messageId! })
    sub.send({ cmd: 'pingreq' })
    await sub.next('pingresp')
    expect(session.out?.inflightMap?.size).toBe(0)
    expect(session.out?.outbox).toBeNull()
  })
})
