import mqtt, { type IClientOptions } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  openTestRuntime,
  type Packet,
  pairClient,
  type RawClient,
  startBroker,
  type TestRuntime,
  useBrokerFixture,
  useMqttJsClients,
} from './helpers.js'

const fx = useBrokerFixture()
const { make } = fx
/** A runtime that refuses topics no table claims: every publish is refused with 0x90 and a reason. */
let strict: TestRuntime
beforeAll(async () => {
  strict = await openTestRuntime({ rejectUnclaimedTopics: true })
})
afterAll(async () => {
  await strict.close()
})

async function subscribe(
  c: RawClient,
  topic: string,
  qos: 0 | 1 | 2 = 0,
  extra: Record<string, unknown> = {},
) {
  const { properties, ...options } = extra
  c.send({
    cmd: 'subscribe',
    messageId: 1,
    subscriptions: [{ topic, qos, ...options }],
    ...(properties ? { properties } : {}),
  } as Packet)
  return c.next('suback')
}

function publish(c: RawClient, fields: Record<string, unknown>) {
  c.send({ cmd: 'publish', qos: 0, retain: false, dup: false, payload: '', ...fields } as Packet)
}

/** A fresh runtime, closed by `await using`. */
async function ownRuntime() {
  const t = await openTestRuntime()
  return Object.assign(t, { [Symbol.asyncDispose]: () => fx.broker.close().then(() => t.close()) })
}

/**
 * A barrier: `p` publishes a QoS 1 sentinel on `topic` (which `c` subscribed to) and `c`'s copy is awaited.
 * Resolves with what `c` received before it (topics): a late or extra message would come first.
 */
async function beforeSentinel(p: RawClient, c: RawClient, topic: string, messageId = 99): Promise<string[]> {
  publish(p, { topic, payload: 'sentinel', qos: 1, messageId })
  await p.next('puback', (a) => a.messageId === messageId)
  await c.next('publish', (m) => m.topic === topic)
  return c.packets.filter((x) => x.cmd === 'publish').map((x) => (x as { topic: string }).topic)
}

describe('reason codes and reason strings', () => {
  it('refuses a publish with the runtime’s reason code and reason string in PUBACK and PUBREC', async () => {
    make({}, strict)
    const c = pairClient(fx.broker, 5)
    await c.connect()
    publish(c, { topic: 'nowhere/1', payload: 'x', qos: 1, messageId: 1 })
    const puback = await c.next('puback')
    expect(puback.reasonCode).toBe(0x90)
    expect(puback.properties?.reasonString).toMatch(/no resource claims topic nowhere\/1/)
    publish(c, { topic: 'nowhere/2', payload: 'x', qos: 2, messageId: 2 })
    const pubrec = await c.next('pubrec')
    expect(pubrec.reasonCode).toBe(0x90)
    expect(pubrec.properties?.reasonString).toMatch(/nowhere\/2/)
  })

  it('sends no reason string on acknowledgements when Request Problem Information is 0 [MQTT-3.1.2-29]', async () => {
    make({}, strict)
    const c = pairClient(fx.broker, 5)
    await c.connect({ properties: { requestProblemInformation: false } })
    publish(c, { topic: 'nowhere/1', payload: 'x', qos: 1, messageId: 1 })
    const puback = await c.next('puback')
    expect(puback.reasonCode).toBe(0x90)
    expect(puback.properties).toBeUndefined()
    const suback = await subscribe(c, 'a/#/b')
    expect(suback.granted).toEqual([0x8f])
    expect(suback.properties).toBeUndefined()
    // DISCONNECT may still carry one.
    c.send({ cmd: 'pubrel', messageId: 9 })
    expect((await c.next('pubcomp')).properties).toBeUndefined()
    publish(c, { topic: 'a/+', payload: 'x' })
    const d = await c.next('disconnect')
    expect(d.reasonCode).toBe(0x90)
    expect(d.properties?.reasonString).toBe('invalid topic name')
  })

  it('explains SUBACK, PUBCOMP and PUBREL failures and answers UNSUBSCRIBE of nothing with 0x11', async () => {
    make()
    const c = pairClient(fx.broker, 5)
    await c.connect()
    const suback = await subscribe(c, 'a/#/b')
    expect(suback.granted).toEqual([0x8f])
    expect(suback.properties?.reasonString).toMatch(/invalid topic filter a\/#\/b/)
    c.send({ cmd: 'pubrel', messageId: 77 })
    const pubcomp = await c.next('pubcomp')
    expect(pubcomp.reasonCode).toBe(0x92)
    expect(pubcomp.properties?.reasonString).toBe('packet identifier not found')
    c.send({ cmd: 'pubrec', messageId: 78 })
    const pubrel = await c.next('pubrel')
    expect(pubrel.reasonCode).toBe(0x92)
    c.send({ cmd: 'unsubscribe', messageId: 3, unsubscriptions: ['never/subscribed'] })
    expect((await c.next('unsuback')).granted).toEqual([0x11])
  })

  it.each([
    {
      name: 'topic alias invalid 0x94',
      rc: 0x94,
      act: (c: RawClient) => publish(c, { topic: 'x', payload: 'x', properties: { topicAlias: 99 } }),
    },
    {
      name: 'payload format invalid 0x99 on QoS 0',
      rc: 0x99,
      act: (c: RawClient) =>
        publish(c, {
          topic: 'x',
          payload: Buffer.from([0xff, 0xfe]),
          properties: { payloadFormatIndicator: true },
        }),
    },
    {
      name: 'protocol error 0x82 for session expiry 0 -> non-0 at DISCONNECT [MQTT-3.14.2-2]',
      rc: 0x82,
      act: (c: RawClient) =>
        c.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 60 } }),
    },
    {
      name: 'malformed packet 0x81',
      rc: 0x81,
      act: (c: RawClient) => c.send(Buffer.from([0x82, 0x01, 0x00])),
    },
  ])('closes with DISCONNECT and a reason string: $name', async ({ rc, act }) => {
    make()
    const c = pairClient(fx.broker, 5)
    await c.connect()
    act(c)
    const d = await c.next('disconnect')
    expect(d.reasonCode).toBe(rc)
    expect(typeof d.properties?.reasonString).toBe('string')
    await c.waitClosed()
  })

  it('gives the reason on session takeover (0x8E) and shutdown (0x8B)', async () => {
    make()
    const old = pairClient(fx.broker, 5)
    await old.connect({ clientId: 'twice' })
    const fresh = pairClient(fx.broker, 5)
    await fresh.connect({ clientId: 'twice' })
    const d = await old.next('disconnect')
    expect(d.reasonCode).toBe(0x8e)
    expect(d.properties?.reasonString).toBe('session taken over')
    await fx.broker.close()
    const s = await fresh.next('disconnect')
    expect(s.reasonCode).toBe(0x8b)
    expect(s.properties?.reasonString).toBe('server shutting down')
  })

  it('drops the reason string when it would exceed the client’s Maximum Packet Size [MQTT-3.2.2-19]', async () => {
    make({}, strict)
    const c = pairClient(fx.broker, 5)
    await c.connect({ properties: { maximumPacketSize: 24 } })
    publish(c, { topic: 'nowhere/1', payload: 'x', qos: 1, messageId: 1 })
    const puback = await c.next('puback')
    expect(puback.reasonCode).toBe(0x90)
    expect(puback.properties).toBeUndefined()
    // A refused CONNACK too.
    const r = pairClient(fx.broker, 5)
    const ack = await r.connect({ properties: { maximumPacketSize: 8, authenticationMethod: 'NOPE' } })
    expect(ack.reasonCode).toBe(0x8c)
    expect(ack.properties).toBeUndefined()
  })
})

describe('CONNACK properties', () => {
  it('sends Response Information only when asked for it', async () => {
    make()
    const c = pairClient(fx.broker, 5)
    const ack = await c.connect({ clientId: 'asker', properties: { requestResponseInformation: true } })
    expect(ack.properties?.responseInformation).toBe('response/asker/')
    const d = pairClient(fx.broker, 5)
    expect((await d.connect()).properties?.responseInformation).toBeUndefined()
    await fx.broker.close()
    make({ responseInformation: ({ clientId }: { clientId: string }) => `replies/${clientId}` })
    const e = pairClient(fx.broker, 5)
    const ack2 = await e.connect({ clientId: 'e', properties: { requestResponseInformation: true } })
    expect(ack2.properties?.responseInformation).toBe('replies/e')
  })
})

describe('subscription options', () => {
  it('retain handling 0 sends current records on every subscribe, 1 only for a new subscription, 2 never', async () => {
    make()
    const p = pairClient(fx.broker, 5)
    await p.connect()
    publish(p, { topic: 'rh/a', payload: 'kept', qos: 1, messageId: 1, retain: true })
    await p.next('puback')
    const retained = async (c: RawClient) => {
      publish(p, { topic: 'rh/marker', payload: 'm' })
      const first = await c.next('publish')
      if (first.topic === 'rh/marker') return false
      await c.next('publish', (x) => x.topic === 'rh/marker')
      return true
    }
    const c = pairClient(fx.broker, 5)
    await c.connect()
    await subscribe(c, 'rh/#', 0, { rh: 0 })
    expect(await retained(c)).toBe(true)
    await subscribe(c, 'rh/#', 0, { rh: 0 })
    expect(await retained(c)).toBe(true)
    await subscribe(c, 'rh/#', 0, { rh: 1 }) // exists: nothing
    expect(await retained(c)).toBe(false)
    const n = pairClient(fx.broker, 5)
    await n.connect()
    await subscribe(n, 'rh/#', 0, { rh: 1 }) // new: sent
    expect(await retained(n)).toBe(true)
    const never = pairClient(fx.broker, 5)
    await never.connect()
    await subscribe(never, 'rh/#', 0, { rh: 2 })
    expect(await retained(never)).toBe(false)
  })

  it('retain as published keeps the retain flag of live writes; without it the flag is 0', async () => {
    make()
    const rap = pairClient(fx.broker, 5)
    await rap.connect()
    await subscribe(rap, 'rap/#', 0, { rap: true, rh: 2 })
    const plain = pairClient(fx.broker, 5)
    await plain.connect()
    await subscribe(plain, 'rap/#', 0, { rh: 2 })
    const p = pairClient(fx.broker, 5)
    await p.connect()
    publish(p, { topic: 'rap/x', payload: 'v', qos: 1, messageId: 1, retain: true })
    expect((await rap.next('publish')).retain).toBe(true)
    expect((await plain.next('publish')).retain).toBe(false)
  })

  it('no local: a client does not get its own publishes back', async () => {
    make()
    const c = pairClient(fx.broker, 5)
    await c.connect()
    await subscribe(c, 'nl/#', 0, { nl: true })
    publish(c, { topic: 'nl/mine', payload: 'own' })
    const p = pairClient(fx.broker, 5)
    await p.connect()
    publish(p, { topic: 'nl/theirs', payload: 'other' })
    expect((await c.next('publish')).topic).toBe('nl/theirs')
    // c's own message went in before p connected: had it come back, it would be before the sentinel
    expect(await beforeSentinel(p, c, 'nl/end')).toEqual([])
  })

  it('delivers subscription identifiers with retained deliveries, live events and durable catch-up', async () => {
    make()
    const p = pairClient(fx.broker, 5)
    await p.connect()
    publish(p, { topic: 'sid/a', payload: 'r', qos: 1, messageId: 1, retain: true })
    await p.next('puback')
    const c = pairClient(fx.broker, 5)
    await c.connect({ clientId: 'sid-sub', clean: true, properties: { sessionExpiryInterval: 300 } })
    await subscribe(c, 'sid/#', 1, { properties: { subscriptionIdentifier: 42 } })
    const ret = await c.next('publish')
    expect(ret.retain).toBe(true)
    expect(ret.properties?.subscriptionIdentifier).toBe(42)
    c.send({ cmd: 'puback', messageId: ret.messageId! })
    publish(p, { topic: 'sid/b', payload: 'live', qos: 1, messageId: 2 })
    const live = await c.next('publish')
    expect(live.properties?.subscriptionIdentifier).toBe(42)
    c.send({ cmd: 'puback', messageId: live.messageId! })
    // PINGRESP: the broker has read the PUBACK, so 'live' is not part of the catch-up
    c.send({ cmd: 'pingreq' })
    await c.next('pingresp')
    c.send({ cmd: 'disconnect' })
    await c.waitClosed()
    await p.next('puback')
    publish(p, { topic: 'sid/c', payload: 'offline', qos: 1, messageId: 3 })
    await p.next('puback')
    const back = pairClient(fx.broker, 5)
    const ack = await back.connect({
      clientId: 'sid-sub',
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    })
    expect(ack.sessionPresent).toBe(true)
    const caught = await back.next('publish')
    expect(caught.payload.toString()).toBe('offline')
    expect(caught.properties?.subscriptionIdentifier).toBe(42)
  })
})

describe('PUBLISH properties', () => {
  it('passes user properties, content type, response topic and correlation data through, also for retained messages', async () => {
    make()
    const p = pairClient(fx.broker, 5)
    await p.connect()
    const properties = {
      userProperties: { a: '1', b: ['x', 'y'] },
      contentType: 'application/x-opaque', // raw bytes, delivered byte for byte with their type
      responseTopic: 'replies/me',
      correlationData: Buffer.from([1, 2, 3]),
    }
    publish(p, { topic: 'up/kept', payload: 'hello', qos: 1, messageId: 1, retain: true, properties })
    await p.next('puback')
    const later = pairClient(fx.broker, 5)
    await later.connect()
    await subscribe(later, 'up/#')
    const got = await later.next('publish')
    expect(got.retain).toBe(true)
    expect(got.payload.toString()).toBe('hello')
    expect(got.properties).toMatchObject(properties)
    publish(p, { topic: 'up/live', payload: 'now', properties })
    expect((await later.next('publish')).properties).toMatchObject(properties)
  })

  it('carries user properties of a write to a table record to live and catching-up subscribers', async () => {
    await using own = Object.assign(
      await openTestRuntime({
        schemas: [{ source: 'type Dog @table @export { id: ID @primaryKey name: String }' }],
      }),
      { [Symbol.asyncDispose]: () => fx.broker.close().then(() => own.close()) },
    )
    make({}, own)
    const live = pairClient(fx.broker, 5)
    await live.connect()
    await subscribe(live, 'Dog/#', 1, { rh: 2 })
    const durable = pairClient(fx.broker, 5)
    await durable.connect({ clientId: 'dog-durable', properties: { sessionExpiryInterval: 600 } })
    await subscribe(durable, 'Dog/#', 1, { rh: 2 })
    durable.send({ cmd: 'disconnect' })
    await durable.waitClosed()
    const p = pairClient(fx.broker, 5)
    await p.connect()
    const userProperties = { source: 'sensor-7' }
    publish(p, {
      topic: 'Dog/1',
      payload: JSON.stringify({ name: 'Rex' }),
      qos: 1,
      messageId: 1,
      retain: true,
      properties: { userProperties },
    })
    expect((await p.next('puback')).reasonCode).toBe(0)
    const got = await live.next('publish')
    expect(JSON.parse(got.payload.toString())).toMatchObject({ name: 'Rex' })
    expect(got.properties?.userProperties).toEqual(userProperties)
    const back = pairClient(fx.broker, 5)
    await back.connect({ clientId: 'dog-durable', clean: false, properties: { sessionExpiryInterval: 600 } })
    expect((await back.next('publish')).properties?.userProperties).toEqual(userProperties)
  })

  it('accepts user properties on every client packet that allows them', async () => {
    make()
    const c = pairClient(fx.broker, 5)
    const userProperties = { who: 'me' }
    await c.connect({ properties: { userProperties } })
    c.send({
      cmd: 'subscribe',
      messageId: 1,
      subscriptions: [{ topic: 'upa/#', qos: 2 }],
      properties: { userProperties },
    } as Packet)
    await c.next('suback')
    publish(c, { topic: 'upa/x', payload: 'v', qos: 2, messageId: 5, properties: { userProperties } })
    await c.next('pubrec')
    c.send({ cmd: 'pubrel', messageId: 5, properties: { userProperties } } as Packet)
    await c.next('pubcomp')
    const m = await c.next('publish')
    c.send({ cmd: 'pubrec', messageId: m.messageId!, properties: { userProperties } } as Packet)
    await c.next('pubrel')
    c.send({ cmd: 'pubcomp', messageId: m.messageId!, properties: { userProperties } } as Packet)
    c.send({
      cmd: 'unsubscribe',
      messageId: 2,
      unsubscriptions: ['upa/#'],
      properties: { userProperties },
    } as Packet)
    await c.next('unsuback')
    c.send({ cmd: 'pingreq' })
    await c.next('pingresp')
    c.send({ cmd: 'disconnect', reasonCode: 0, properties: { userProperties } } as Packet)
    await c.waitClosed()
    expect(c.packets.filter((p) => p.cmd === 'disconnect')).toHaveLength(0)
  })

  it('refuses a payload flagged UTF-8 that is not (PUBREC 0x99) and forwards a valid one with its indicator', async () => {
    make()
    const sub = pairClient(fx.broker, 5)
    await sub.connect()
    await subscribe(sub, 'pf/#')
    const c = pairClient(fx.broker, 5)
    await c.connect()
    publish(c, {
      topic: 'pf/bad',
      payload: Buffer.from([0xc3, 0x28]),
      qos: 2,
      messageId: 1,
      properties: { payloadFormatIndicator: true },
    })
    const rec = await c.next('pubrec')
    expect(rec.reasonCode).toBe(0x99)
    expect(rec.properties?.reasonString).toMatch(/UTF-8/)
    publish(c, { topic: 'pf/good', payload: 'héllo', properties: { payloadFormatIndicator: true } })
    const got = await sub.next('publish')
    expect(got.topic).toBe('pf/good')
    expect(got.properties?.payloadFormatIndicator).toBe(true)
  })

  it('counts message expiry down while a message waits and never sends it after it expired', async () => {
    // Own runtime: its clock starts at the fake time and moves with it.
    vi.useFakeTimers({ toFake: ['Date'] })
    await using own = await ownRuntime()
    make({}, own)
    const p = pairClient(fx.broker, 5)
    await p.connect()
    publish(p, {
      topic: 'exp/r',
      payload: 'short',
      qos: 1,
      messageId: 1,
      retain: true,
      properties: { messageExpiryInterval: 10 },
    })
    await p.next('puback')
    publish(p, { topic: 'exp/s', payload: 'forever', qos: 1, messageId: 2, retain: true })
    await p.next('puback')
    vi.setSystemTime(Date.now() + 4_000)
    const a = pairClient(fx.broker, 5)
    await a.connect()
    await subscribe(a, 'exp/#')
    const first = [await a.next('publish'), await a.next('publish')]
    const short = first.find((x) => x.topic === 'exp/r')!
    expect(short.properties?.messageExpiryInterval).toBe(6) // 10 s minus 4 s waited [MQTT-3.3.2-6]
    expect(first.find((x) => x.topic === 'exp/s')!.properties?.messageExpiryInterval).toBeUndefined()
    vi.setSystemTime(Date.now() + 7_000)
    const b = pairClient(fx.broker, 5)
    await b.connect()
    await subscribe(b, 'exp/#')
    const only = await b.next('publish')
    expect(only.topic).toBe('exp/s') // the expired retained message is not sent [MQTT-3.3.2-5]
    // retained values go before live messages: a sentinel published now comes after any of them
    expect(await beforeSentinel(p, b, 'exp/end', 3)).toEqual([])
  })

  it('drops expired messages from a durable session’s catch-up', async () => {
    // Own runtime: its clock starts at the fake time and moves with it.
    vi.useFakeTimers({ toFake: ['Date'] })
    await using own = await ownRuntime()
    make({}, own)
    const c = pairClient(fx.broker, 5)
    await c.connect({ clientId: 'exp-durable', properties: { sessionExpiryInterval: 600 } })
    await subscribe(c, 'expd/#', 1)
    c.send({ cmd: 'disconnect' })
    await c.waitClosed()
    const p = pairClient(fx.broker, 5)
    await p.connect()
    publish(p, {
      topic: 'expd/a',
      payload: 'gone',
      qos: 1,
      messageId: 1,
      properties: { messageExpiryInterval: 5 },
    })
    publish(p, {
      topic: 'expd/b',
      payload: 'soon',
      qos: 1,
      messageId: 2,
      properties: { messageExpiryInterval: 60 },
    })
    publish(p, { topic: 'expd/c', payload: 'kept', qos: 1, messageId: 3 })
    for (let i = 0; i < 3; i++) await p.next('puback')
    vi.setSystemTime(Date.now() + 20_000)
    const back = pairClient(fx.broker, 5)
    await back.connect({ clientId: 'exp-durable', clean: false, properties: { sessionExpiryInterval: 600 } })
    const m1 = await back.next('publish')
    const m2 = await back.next('publish')
    expect([m1.payload.toString(), m2.payload.toString()]).toEqual(['soon', 'kept'])
    expect(m1.properties?.messageExpiryInterval).toBe(40)
    // the catch-up goes before live messages: a sentinel published now comes after all of it
    expect(await beforeSentinel(p, back, 'expd/end', 4)).toEqual([])
  })

  it('assigns outbound topic aliases up to the client’s Topic Alias Maximum', async () => {
    make()
    const c = pairClient(fx.broker, 5)
    await c.connect({ properties: { topicAliasMaximum: 2 } })
    await subscribe(c, 'al/#')
    const p = pairClient(fx.broker, 5)
    await p.connect()
    for (const t of ['al/a', 'al/a', 'al/b', 'al/c', 'al/a', 'al/b']) publish(p, { topic: t, payload: t })
    const got: { topic: string; alias: number | undefined; payload: string }[] = []
    for (let i = 0; i < 6; i++) {
      const m = await c.next('publish')
      got.push({ topic: m.topic, alias: m.properties?.topicAlias, payload: m.payload.toString() })
    }
    expect(got).toEqual([
      { topic: 'al/a', alias: 1, payload: 'al/a' },
      { topic: '', alias: 1, payload: 'al/a' },
      { topic: 'al/b', alias: 2, payload: 'al/b' },
      { topic: 'al/c', alias: undefined, payload: 'al/c' },
      { topic: '', alias: 1, payload: 'al/a' },
      { topic: '', alias: 2, payload: 'al/b' },
    ])
    // Without a Topic Alias Maximum the client gets no aliases [MQTT-3.3.2-9].
    const none = pairClient(fx.broker, 5)
    await none.connect()
    await subscribe(none, 'al/#')
    publish(p, { topic: 'al/a', payload: 'x' })
    expect((await none.next('publish')).properties?.topicAlias).toBeUndefined()
  })
})

describe('flow control and limits', () => {
  it('never has more unacknowledged QoS 1 messages out than the client’s Receive Maximum', async () => {
    make()
    const c = pairClient(fx.broker, 5)
    await c.connect({ clientId: 'rm', properties: { receiveMaximum: 2 } })
    await subscribe(c, 'rm/#', 1)
    const p = pairClient(fx.broker, 5)
    await p.connect()
    for (let i = 1; i <= 5; i++) publish(p, { topic: 'rm/x', payload: String(i), qos: 1, messageId: i })
    for (let i = 1; i <= 5; i++) await p.next('puback')
    const out = () =>
      c.packets.filter((x) => x.cmd === 'publish') as { messageId?: number; payload: Buffer }[]
    const session = () => fx.broker.listClients().find((x) => x.clientId === 'rm')
    // All five placed: two in flight, three queued (a broker ignoring the window has five in flight).
    await vi.waitFor(() => expect(session()).toMatchObject({ inflight: 2, queued: 3 }))
    await vi.waitFor(() => expect(out()).toHaveLength(2))
    expect(out().map((x) => x.payload.toString())).toEqual(['1', '2'])
    c.send({ cmd: 'puback', messageId: out()[0]!.messageId! })
    await vi.waitFor(() => expect(session()).toMatchObject({ inflight: 2, queued: 2 }))
    await vi.waitFor(() => expect(out()).toHaveLength(3))
    expect(out().map((x) => x.payload.toString())).toEqual(['1', '2', '3'])
  })

  it('ends the session when DISCONNECT sets the expiry to 0', async () => {
    make()
    const c = pairClient(fx.broker, 5)
    await c.connect({ clientId: 'sx', properties: { sessionExpiryInterval: 600 } })
    c.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 0 } })
    await c.waitClosed()
    const back = pairClient(fx.broker, 5)
    expect(
      (await back.connect({ clientId: 'sx', clean: false, properties: { sessionExpiryInterval: 600 } }))
        .sessionPresent,
    ).toBe(false)
  })

  it('publishes a will with its properties: expiry, content type, user properties, response topic, correlation data', async () => {
    make()
    const w = pairClient(fx.broker, 5)
    await w.connect()
    await subscribe(w, 'will/#')
    const c = pairClient(fx.broker, 5)
    const willProperties = {
      messageExpiryInterval: 300,
      contentType: 'application/x-opaque',
      userProperties: { reason: 'crash' },
      responseTopic: 'will/ack',
      correlationData: Buffer.from('cid'),
      payloadFormatIndicator: true,
    }
    await c.connect({
      clientId: 'dying',
      will: {
        topic: 'will/dying',
        payload: Buffer.from('bye'),
        qos: 0,
        retain: false,
        properties: willProperties,
      },
    })
    c.end()
    const got = await w.next('publish')
    expect(got.topic).toBe('will/dying')
    expect(got.payload.toString()).toBe('bye')
    expect(got.properties).toMatchObject(willProperties)
  })

  it('refuses a will payload flagged UTF-8 that is not (CONNACK 0x99)', async () => {
    make()
    const c = pairClient(fx.broker, 5)
    const ack = await c.connect({
      will: {
        topic: 'will/bad',
        payload: Buffer.from([0xff]),
        qos: 0,
        retain: false,
        properties: { payloadFormatIndicator: true },
      },
    })
    expect(ack.reasonCode).toBe(0x99)
  })
})

describe('request / response with MQTT.js v5', () => {
  const mqttJs = useMqttJsClients()

  it('works end to end: response information, response topic, correlation data, user properties', async () => {
    const tb = await startBroker({}, fx.rt)
    try {
      const connect = (clientId: string, extra: IClientOptions = {}) =>
        mqttJs.connect(tb, { protocolVersion: 5, clientId, ...extra })
      const responder = await connect('responder')
      await responder.subscribeAsync('service/add', { qos: 1 })
      // Awaited before the clients end: a force-end before its PUBACK would reject it unhandled.
      let answered: Promise<unknown> = Promise.resolve()
      responder.on('message', (_topic, payload, packet) => {
        const { a, b } = JSON.parse(payload.toString())
        answered = responder.publishAsync(packet.properties!.responseTopic!, JSON.stringify({ sum: a + b }), {
          qos: 1,
          properties: {
            correlationData: packet.properties!.correlationData,
            contentType: 'application/json',
            userProperties: { served: 'yes' },
          },
        })
      })
      const requester = mqtt.connect(`mqtt://127.0.0.1:${tb.port}`, {
        protocolVersion: 5,
        reconnectPeriod: 0,
        clientId: 'requester',
        properties: { requestResponseInformation: true, topicAliasMaximum: 5 },
      })
      mqttJs.add(requester)
      const connack = await new Promise<mqtt.IConnackPacket>((resolve) => requester.once('connect', resolve))
      // The Response Information is the prefix for this client's reply topics.
      const info = connack.properties?.responseInformation
      expect(info).toBe('response/requester/')
      const replyTopic = `${info}add`
      await requester.subscribeAsync(replyTopic, { qos: 1 })
      const reply = new Promise<{ payload: string; props: mqtt.IPublishPacket['properties']; topic: string }>(
        (resolve) =>
          requester.on('message', (topic, payload, packet) =>
            resolve({ topic, payload: payload.toString(), props: packet.properties }),
          ),
      )
      await requester.publishAsync('service/add', JSON.stringify({ a: 2, b: 3 }), {
        qos: 1,
        properties: { responseTopic: replyTopic, correlationData: Buffer.from('req-1') },
      })
      const r = await reply
      expect(r.topic).toBe(replyTopic)
      expect(JSON.parse(r.payload)).toEqual({ sum: 5 })
      expect(r.props?.correlationData?.toString()).toBe('req-1')
      expect(r.props?.contentType).toBe('application/json')
      expect(r.props?.userProperties).toEqual({ served: 'yes' })
      await answered
    } finally {
      await mqttJs.endAll()
      await tb.close()
    }
  })
})
