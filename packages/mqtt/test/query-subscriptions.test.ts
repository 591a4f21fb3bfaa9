import type { ResourceRuntime } from '@proj/resource'
import { tempDir, waitFor } from '@proj/test-utils'
import mqtt, {
  type ErrorWithSubackPacket,
  type IClientOptions,
  type IPublishPacket,
  type MqttClient,
} from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import {
  openTestRuntime,
  RawClient,
  startBroker,
  type TestBroker,
  useClosers,
  useMqttJsClients,
} from './helpers.js'

const SCHEMA = 'type Dog @table @export { id: ID @primaryKey name: String breed: String age: Int }'
const admin = { user: { username: 'admin', role: 'admin', superUser: true } }

type Got = { topic: string; payload: string; retain: boolean; event?: unknown; ids?: unknown }

/** Records what a client receives, with the MQTT 5 user property `event` and subscription ids. */
function record(client: MqttClient): Got[] {
  const got: Got[] = []
  client.on('message', (topic, payload, packet: IPublishPacket) => {
    const props = packet.properties
    got.push({
      topic,
      payload: payload.toString(),
      retain: packet.retain,
      ...(props?.userProperties?.event !== undefined ? { event: props.userProperties.event } : {}),
      ...(props?.subscriptionIdentifier !== undefined ? { ids: props.subscriptionIdentifier } : {}),
    })
  })
  return got
}

describe('query subscriptions over MQTT', () => {
  const closers = useClosers()
  const clients = useMqttJsClients()
  // Registered after the closers' hook, so it runs first (hooks run as a stack): clients end before their broker.
  afterEach(() => clients.endAll())
  const start = async (options: Record<string, unknown> = {}, dir?: string) => {
    const rt = closers.add(await openTestRuntime({ schemas: [{ source: SCHEMA }], ...options }, dir))
    return closers.add(await startBroker({}, rt))
  }

  /** Reconnects a durable session already recording: its replay may follow CONNACK at once. */
  const resume = async (tb: TestBroker, options: IClientOptions) => {
    const sub = mqtt.connect(`mqtt://127.0.0.1:${tb.port}`, { reconnectPeriod: 0, ...options })
    clients.add(sub)
    const got = record(sub)
    await new Promise((resolve, reject) => {
      sub.once('connect', resolve)
      sub.once('error', reject)
    })
    return { sub, got }
  }

  for (const protocolVersion of [4, 5] as const) {
    it(`v${protocolVersion === 5 ? 5 : '3.1.1'}: matching records first (retained), then enter, update, leave, delete and messages`, async () => {
      const tb = await start()
      const { runtime } = tb
      await runtime.put('Dog/1', { name: 'Rex', breed: 'Lab', age: 5 }, admin)
      await runtime.put('Dog/2', { name: 'Fido', breed: 'Lab', age: 2 }, admin)
      await runtime.put('Dog/3', { name: 'Max', breed: 'Pug', age: 9 }, admin)
      const sub = await clients.connect(tb, { protocolVersion, clientId: `q-sub-${protocolVersion}` })
      const pub = await clients.connect(tb, { protocolVersion: 5, clientId: `q-pub-${protocolVersion}` })
      const got = record(sub)
      const granted = await sub.subscribeAsync('Dog/?breed=Lab&age=gt=3', {
        qos: 1,
        ...(protocolVersion === 5 ? { properties: { subscriptionIdentifier: 4 } } : {}),
      })
      expect(granted[0]!.qos).toBe(1)
      await waitFor(() => got.length === 1)
      expect(got[0]).toMatchObject({ topic: 'Dog/1', retain: true })
      expect(JSON.parse(got[0]!.payload)).toEqual({ id: '1', name: 'Rex', breed: 'Lab', age: 5 })
      // enters by a retained publish, is updated, leaves, comes back by a patch, is deleted
      await pub.publishAsync('Dog/2', JSON.stringify({ name: 'Fido', breed: 'Lab', age: 4 }), {
        qos: 1,
        retain: true,
      })
      await runtime.patch('Dog/2', { name: 'Fido II' }, admin)
      await pub.publishAsync('Dog/1', JSON.stringify({ bark: true }), { qos: 1 }) // a message to a match
      await pub.publishAsync('Dog/3', JSON.stringify({ bark: true }), { qos: 1 }) // not a match: nothing
      await runtime.patch('Dog/1', { age: 1 }, admin)
      await runtime.patch('Dog/1', { age: 8 }, admin)
      await pub.publishAsync('Dog/2', '', { qos: 1, retain: true })
      await runtime.put('Dog/3', { name: 'Max', breed: 'Pug', age: 10 }, admin) // still out
      await runtime.put('Dog/9', { name: 'Last', breed: 'Lab', age: 6 }, admin)
      await waitFor(() => got.length === 8)
      const v5 = protocolVersion === 5
      expect(
        got
          .slice(1)
          .map((g) => [
            g.topic,
            g.retain,
            g.event,
            g.ids,
            g.payload === '' ? '' : (JSON.parse(g.payload).name ?? 'message'),
          ]),
      ).toEqual([
        ['Dog/2', false, undefined, v5 ? 4 : undefined, 'Fido'],
        ['Dog/2', false, undefined, v5 ? 4 : undefined, 'Fido II'],
        ['Dog/1', false, undefined, v5 ? 4 : undefined, 'message'],
        ['Dog/1', false, v5 ? 'leave' : undefined, v5 ? 4 : undefined, ''],
        ['Dog/1', false, undefined, v5 ? 4 : undefined, 'Rex'],
        ['Dog/2', false, v5 ? 'delete' : undefined, v5 ? 4 : undefined, ''],
        ['Dog/9', false, undefined, v5 ? 4 : undefined, 'Last'],
      ])
    })
  }

  it('v5 retain handling 2 skips the snapshot; retain-as-published keeps the publisher’s flag; QoS 2', async () => {
    const tb = await start()
    const { runtime } = tb
    await runtime.put('Dog/1', { name: 'Rex', breed: 'Lab', age: 5 }, admin)
    const sub = await clients.connect(tb, { protocolVersion: 5, clientId: 'q-rh' })
    const pub = await clients.connect(tb, { protocolVersion: 5, clientId: 'q-rh-pub' })
    const got = record(sub)
    const granted = await sub.subscribeAsync('Dog/?age=gt=3', { qos: 2, rh: 2, rap: true })
    expect(granted[0]!.qos).toBe(2)
    await pub.publishAsync('Dog/2', JSON.stringify({ name: 'In', age: 6 }), { qos: 2, retain: true })
    await pub.publishAsync('Dog/2', JSON.stringify({ hello: 1 }), { qos: 2 })
    await waitFor(() => got.length === 2)
    // no snapshot (Dog/1 never came); the retained publish keeps retain 1, the message 0
    expect(got.map((g) => [g.topic, g.retain])).toEqual([
      ['Dog/2', true],
      ['Dog/2', false],
    ])
  })

  it('v5: QoS 0 and 2, subscription identifiers on the snapshot too, no-local, select(); retain 1 only on the snapshot', async () => {
    const tb = await start()
    const { runtime } = tb
    await runtime.put('Dog/1', { name: 'Rex', breed: 'Lab', age: 5 }, admin)
    const a = await clients.connect(tb, { protocolVersion: 5, clientId: 'q-a' })
    const b = await clients.connect(tb, { protocolVersion: 5, clientId: 'q-b' })
    const qos = new Map<MqttClient, number[]>([
      [a, []],
      [b, []],
    ])
    for (const c of [a, b]) c.on('message', (_t, _p, packet) => qos.get(c)!.push(packet.qos))
    const gotA = record(a)
    const gotB = record(b)
    await a.subscribeAsync('Dog/?age=gt=3', { qos: 0, nl: true, properties: { subscriptionIdentifier: 7 } })
    await b.subscribeAsync('Dog/?select(name)&breed=Lab', {
      qos: 2,
      properties: { subscriptionIdentifier: 8 },
    })
    await waitFor(() => gotA.length === 1 && gotB.length === 1)
    // a's own retained publish enters both results: no-local keeps it from a, b gets it at QoS 1
    await a.publishAsync('Dog/2', JSON.stringify({ name: 'Own', breed: 'Lab', age: 6 }), {
      qos: 1,
      retain: true,
    })
    await runtime.put('Dog/3', { name: 'Other', breed: 'Lab', age: 7 }, admin)
    await waitFor(() => gotA.length === 2 && gotB.length === 3)
    const parsed = (got: Got[]) => got.map((g) => ({ ...g, payload: JSON.parse(g.payload) }))
    expect(parsed(gotA)).toEqual([
      { topic: 'Dog/1', payload: { id: '1', name: 'Rex', breed: 'Lab', age: 5 }, retain: true, ids: 7 },
      { topic: 'Dog/3', payload: { id: '3', name: 'Other', breed: 'Lab', age: 7 }, retain: false, ids: 7 },
    ])
    expect(qos.get(a)).toEqual([0, 0])
    // select(name) alone: the value itself
    expect(gotB).toEqual([
      { topic: 'Dog/1', payload: '"Rex"', retain: true, ids: 8 },
      { topic: 'Dog/2', payload: '"Own"', retain: false, ids: 8 },
      { topic: 'Dog/3', payload: '"Other"', retain: false, ids: 8 },
    ])
    // a record written without a QoS (here through the runtime, as REST does) goes at the granted QoS
    expect(qos.get(b)).toEqual([2, 1, 2])
  })

  it('v5 retain handling 1 sends the snapshot only for a new subscription, not when it is replaced', async () => {
    const tb = await start()
    await tb.runtime.put('Dog/1', { name: 'Rex', breed: 'Lab', age: 5 }, admin)
    const sub = await clients.connect(tb, { protocolVersion: 5, clientId: 'q-rh1' })
    const got = record(sub)
    await sub.subscribeAsync('Dog/?age=gt=3', { qos: 1, rh: 1 })
    await waitFor(() => got.length === 1)
    // the same filter again replaces the subscription: no second snapshot, live changes still come
    await sub.subscribeAsync('Dog/?age=gt=3', { qos: 1, rh: 1 })
    await tb.runtime.patch('Dog/1', { age: 6 }, admin) // the sentinel
    await waitFor(() => got.length === 2)
    expect(got.map((g) => [g.topic, g.retain, JSON.parse(g.payload).age])).toEqual([
      ['Dog/1', true, 5],
      ['Dog/1', false, 6],
    ])
  })

  it('needs read permission on the table: SUBACK 0x87 (0x80 for 3.1.1)', async () => {
    const tb = await start({
      roles: [{ name: 'blind', tables: { Dog: { read: false, insert: true, update: true, delete: true } } }],
    })
    await tb.runtime.users.add('nemo', 'pw', { role: 'blind' })
    for (const protocolVersion of [5, 4] as const) {
      const c = await clients.connect(tb, {
        protocolVersion,
        clientId: `q-blind-${protocolVersion}`,
        username: 'nemo',
        password: 'pw',
      })
      // MQTT.js rejects a SUBACK with only failure codes (v5); 3.1.1 resolves with 0x80
      const code = await c.subscribeAsync('Dog/?age=gt=3', { qos: 1 }).then(
        (granted) => granted[0]!.qos,
        (error: ErrorWithSubackPacket) => error.packet.granted[0],
      )
      expect(code).toBe(protocolVersion === 5 ? 0x87 : 0x80)
    }
  })

  it('refuses sort(), limit(), a bad value and a bare wildcard in the query: SUBACK 0x8F (0x80 for 3.1.1)', async () => {
    const tb = await start()
    const bad = [
      'Dog/?breed=Lab&sort(age)',
      'Dog/?limit(3)',
      'Dog/?age=gt=old',
      'Dog/?name=a+b', // MQTT.js would not send a bare + or # inside a level
      'Dog/?x=#',
    ]
    for (const [version, refused] of [
      [5, 0x8f],
      [4, 0x80],
    ] as const) {
      const raw = await RawClient.tcp(tb.port, version)
      await raw.connect()
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: bad.map((topic) => ({ topic, qos: 1 })) })
      expect((await raw.next('suback')).granted).toEqual(bad.map(() => refused))
      raw.end()
    }
    const v5 = await clients.connect(tb, { protocolVersion: 5, clientId: 'q-bad-5' })
    // %2B and %23 are the characters
    expect((await v5.subscribeAsync('Dog/?name=a%2Bb%23', { qos: 1 }))[0]!.qos).toBe(1)
  })

  it('keeps a durable session’s query subscription across a restart and replays what happened while away', async () => {
    const dir = await tempDir('mqtt-query-')
    try {
      let tb = await start({}, dir.path)
      await tb.runtime.put('Dog/1', { name: 'In', breed: 'Lab', age: 5 }, admin)
      await tb.runtime.put('Dog/2', { name: 'Out', breed: 'Lab', age: 1 }, admin)
      const options = {
        protocolVersion: 5 as const,
        clientId: 'q-durable',
        clean: false,
        properties: { sessionExpiryInterval: 3600 },
      }
      let sub = await clients.connect(tb, options)
      let got = record(sub)
      await sub.subscribeAsync('Dog/?age=gt=3', { qos: 1 })
      await waitFor(() => got.length === 1)
      await sub.endAsync()
      await tb.runtime.patch('Dog/1', { age: 1 }, admin) // leaves
      await tb.runtime.patch('Dog/2', { age: 7 }, admin) // enters
      await tb.runtime.put('Dog/3', { name: 'New', breed: 'Pug', age: 4 }, admin) // enters
      await tb.runtime.delete('Dog/3', admin) // then deleted
      await closers.closeAll()
      tb = await start({}, dir.path)
      ;({ sub, got } = await resume(tb, options))
      await waitFor(() => got.length === 4)
      expect(
        got.map((g) => [g.topic, g.event, g.payload === '' ? '' : JSON.parse(g.payload).age, g.retain]),
      ).toEqual([
        ['Dog/1', 'leave', '', false],
        ['Dog/2', undefined, 7, false],
        ['Dog/3', undefined, 4, false],
        ['Dog/3', 'delete', '', false],
      ])
      // and live again
      await tb.runtime.patch('Dog/2', { age: 8 }, admin)
      await waitFor(() => got.length === 5)
      expect(got[4]).toMatchObject({ topic: 'Dog/2', retain: false })
    } finally {
      await clients.endAll()
      await closers.closeAll()
      await dir.remove()
    }
  })

  it('sends reset (MQTT 5) and a fresh snapshot when the change log no longer reaches back', async () => {
    const tb = await start({ retention: { maxEvents: 2 } })
    const { runtime } = tb
    await runtime.put('Dog/1', { name: 'In', breed: 'Lab', age: 5 }, admin)
    const options = {
      protocolVersion: 5 as const,
      clientId: 'q-reset',
      clean: false,
      properties: { sessionExpiryInterval: 3600 },
    }
    let sub = await clients.connect(tb, options)
    let got = record(sub)
    await sub.subscribeAsync('Dog/?age=gt=3', { qos: 1 })
    await waitFor(() => got.length === 1)
    await sub.endAsync()
    await runtime.put('Dog/2', { name: 'Also in', breed: 'Lab', age: 6 }, admin)
    for (let i = 10; i < 15; i++) await runtime.put(`Dog/${i}`, { name: 'Out', breed: 'Pug', age: 1 }, admin)
    await (runtime as ResourceRuntime).storage.log.compact()
    ;({ sub, got } = await resume(tb, options))
    await waitFor(() => got.length === 3)
    expect(got.map((g) => [g.topic, g.event, g.retain])).toEqual([
      ['Dog/?age=gt=3', 'reset', false],
      ['Dog/1', undefined, true],
      ['Dog/2', undefined, true],
    ])
  })
})
