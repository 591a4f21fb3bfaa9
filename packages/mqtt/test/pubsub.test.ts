import { waitFor } from '@proj/test-utils'
import type { IClientOptions, MqttClient } from 'mqtt'
import { describe, expect, it } from 'vitest'
import { useTcpBroker } from './helpers.js'

const fx = useTcpBroker('file')
const client = (options: IClientOptions = {}) => fx.connect(options)

interface Received {
  topic: string
  payload: string
  retain: boolean
  qos: number
  properties?: Record<string, unknown>
}

function collect(c: MqttClient): Received[] {
  const out: Received[] = []
  c.on('message', (topic, payload, packet) =>
    out.push({
      topic,
      payload: payload.toString(),
      retain: packet.retain,
      qos: packet.qos,
      properties: packet.properties,
    }),
  )
  return out
}

describe.each([4, 5] as const)('publish and subscribe with MQTT.js v%s', (protocolVersion) => {
  const t = (s: string) => `v${protocolVersion}/${s}`

  it.each([0, 1, 2] as const)('delivers QoS %s messages in both directions', async (qos) => {
    const sub = await client({ protocolVersion })
    const got = collect(sub)
    await sub.subscribeAsync(t(`q${qos}/#`), { qos })
    const pub = await client({ protocolVersion })
    for (let i = 0; i < 5; i++) await pub.publishAsync(t(`q${qos}/a`), JSON.stringify({ i }), { qos })
    await waitFor(() => got.length === 5, { message: '5 messages' })
    expect(got.map((m) => JSON.parse(m.payload).i)).toEqual([0, 1, 2, 3, 4])
    expect(got.every((m) => m.qos === qos && !m.retain)).toBe(true)
  })

  it('stores a retained publish and delivers it to later subscribers with retain 1', async () => {
    const pub = await client({ protocolVersion })
    await pub.publishAsync(t('ret/a'), JSON.stringify({ x: 1 }), { qos: 1, retain: true })
    await pub.publishAsync(t('ret/b'), 'plain text', { qos: 1, retain: true })
    const sub = await client({ protocolVersion })
    const got = collect(sub)
    await sub.subscribeAsync(t('ret/+'), { qos: 1 })
    await waitFor(() => got.length === 2, { message: 'retained' })
    const byTopic = Object.fromEntries(got.map((m) => [m.topic, m]))
    expect(JSON.parse(byTopic[t('ret/a')]!.payload)).toEqual({ x: 1 })
    expect(byTopic[t('ret/b')]!.payload).toBe('plain text')
    expect(got.every((m) => m.retain)).toBe(true)
    // live updates arrive with retain 0
    await pub.publishAsync(t('ret/a'), JSON.stringify({ x: 2 }), { qos: 1, retain: true })
    await waitFor(() => got.length === 3, { message: 'live update' })
    expect(got[2]!.retain).toBe(false)
    // an empty retained payload deletes: subscribers see an empty payload, new subscribers nothing
    await pub.publishAsync(t('ret/a'), '', { qos: 1, retain: true })
    await waitFor(() => got.length === 4, { message: 'delete' })
    expect(got[3]!.payload).toBe('')
    const late = await client({ protocolVersion })
    const lateGot = collect(late)
    await late.subscribeAsync(t('ret/+'), { qos: 1 })
    await waitFor(() => lateGot.length === 1, { message: 'late retained' })
    // A sentinel after the retained values: anything deleted that still arrived would be before it.
    await pub.publishAsync(t('ret/zz'), 'sentinel', { qos: 1 })
    await waitFor(() => lateGot.length === 2, { message: 'sentinel' })
    expect(lateGot.map((m) => m.topic)).toEqual([t('ret/b'), t('ret/zz')])
  })

  it('does not store non-retained messages', async () => {
    const pub = await client({ protocolVersion })
    await pub.publishAsync(t('msg/a'), 'once', { qos: 1 })
    const sub = await client({ protocolVersion })
    const got = collect(sub)
    await sub.subscribeAsync(t('msg/#'), { qos: 1 })
    // A sentinel published after SUBACK arrives after anything the subscription would have got first.
    await pub.publishAsync(t('msg/sentinel'), 'sentinel', { qos: 1 })
    await waitFor(() => got.length >= 1, { message: 'sentinel' })
    expect(got.map((m) => m.topic)).toEqual([t('msg/sentinel')])
  })

  it('unsubscribes', async () => {
    const sub = await client({ protocolVersion })
    const got = collect(sub)
    await sub.subscribeAsync(t('un/#'))
    await sub.unsubscribeAsync(t('un/#'))
    await sub.subscribeAsync(t('un2/#'), { qos: 1 })
    const pub = await client({ protocolVersion })
    await pub.publishAsync(t('un/x'), 'x', { qos: 1 })
    // The sentinel on the filter still subscribed comes after un/x, had un/x been delivered.
    await pub.publishAsync(t('un2/s'), 's', { qos: 1 })
    await waitFor(() => got.length >= 1, { message: 'sentinel' })
    expect(got.map((m) => m.topic)).toEqual([t('un2/s')])
  })
})

describe('MQTT 5 specifics', () => {
  it('passes content type and user properties through and honours no local', async () => {
    const c = await client({ protocolVersion: 5 })
    const got = collect(c)
    await c.subscribeAsync('p5/#', { qos: 1, nl: true })
    await c.publishAsync('p5/self', 'mine', { qos: 1 })
    const other = await client({ protocolVersion: 5 })
    await other.publishAsync('p5/other', Buffer.from([1, 2, 3]), {
      qos: 1,
      properties: { contentType: 'application/octet-stream', userProperties: { k: 'v' } },
    })
    // The other client's message is the sentinel: its own (acknowledged before) would have come first.
    await waitFor(() => got.length === 1, { message: 'message from other' })
    expect(got.map((m) => m.topic)).toEqual(['p5/other'])
    expect(got[0]!.properties).toMatchObject({
      contentType: 'application/octet-stream',
      userProperties: { k: 'v' },
    })
  })

  it('delivers subscription identifiers', async () => {
    const c = await client({ protocolVersion: 5 })
    const got = collect(c)
    await c.subscribeAsync('sid/#', { qos: 0, properties: { subscriptionIdentifier: 42 } })
    const pub = await client({ protocolVersion: 5 })
    await pub.publishAsync('sid/a', 'x', { qos: 1 })
    await waitFor(() => got.length === 1)
    expect(got[0]!.properties?.subscriptionIdentifier).toEqual(42)
  })

  it('resolves inbound topic aliases', async () => {
    const sub = await client({ protocolVersion: 5 })
    const got = collect(sub)
    await sub.subscribeAsync('alias/#', { qos: 1 })
    const pub = await client({ protocolVersion: 5, properties: { topicAliasMaximum: 0 } })
    await pub.publishAsync('alias/a', 'one', { qos: 1, properties: { topicAlias: 1 } })
    await pub.publishAsync('', 'two', { qos: 1, properties: { topicAlias: 1 } })
    await waitFor(() => got.length === 2)
    expect(got.map((m) => [m.topic, m.payload])).toEqual([
      ['alias/a', 'one'],
      ['alias/a', 'two'],
    ])
  })

  it('delivers each subscriber its own format (user property accept)', async () => {
    const json = await client({ protocolVersion: 5 })
    const cbor = await client({
      protocolVersion: 5,
      properties: { userProperties: { accept: 'application/cbor' } },
    })
    const gotJson: Buffer[] = []
    const gotCbor: Buffer[] = []
    json.on('message', (_t, p) => gotJson.push(p))
    cbor.on('message', (_t, p) => gotCbor.push(p))
    await json.subscribeAsync('fmt/#', { qos: 1 })
    await cbor.subscribeAsync('fmt/#', { qos: 1 })
    const pub = await client({ protocolVersion: 5 })
    await pub.publishAsync('fmt/a', JSON.stringify({ n: 1 }), { qos: 1, retain: true })
    await waitFor(() => gotJson.length === 1 && gotCbor.length === 1)
    expect(JSON.parse(gotJson[0]!.toString())).toEqual({ n: 1 })
    expect(gotCbor[0]!.equals(Buffer.from(JSON.stringify({ n: 1 })))).toBe(false)
    expect(gotCbor[0]![0]).toBe(0xa1) // CBOR map of one entry
  })
})
