// cluster.ack: local keeps acknowledged writes in a node's outbox until the stream takes them. These
// tests hold the stream shut (JetStream refuses new messages; NATS, the KV buckets and the nodes stay up)
// so that the outboxes fill, and check what a hand-over and a full outbox do meanwhile.
import { DiscardPolicy, jetstreamManager } from '@nats-io/jetstream'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, afterEach, expect, it } from 'vitest'
import {
  ADMIN,
  collectPayloads as collect,
  describeCluster,
  getRecord,
  send,
  useMqttCluster,
  within,
} from './helpers/cluster.js'

const NODES = ['a', 'b', 'c']
const LIMIT = 30

/** Shuts and opens the cluster's stream (max_msgs at its present count with discard new refuses more). */
function streamGate(urls: () => string[]) {
  let nc: NatsConnection | undefined
  const manager = async () => {
    nc ??= await connect({ servers: urls() })
    return jetstreamManager(nc)
  }
  return {
    async shut() {
      const jsm = await manager()
      const info = await jsm.streams.info('proj')
      await jsm.streams.update('proj', { max_msgs: info.state.messages, discard: DiscardPolicy.New })
    },
    async open() {
      const jsm = await manager()
      await jsm.streams.update('proj', { max_msgs: -1, discard: DiscardPolicy.Old })
    },
    async close() {
      await nc?.close()
    },
  }
}

/** Resolves with the CONNACK's session-present flag (rejects on a refusal). */
function connack(client: MqttClient): Promise<boolean> {
  return new Promise((resolve, reject) => {
    client.once('connect', (packet) => resolve(packet.sessionPresent))
    client.once('error', reject)
  })
}

describeCluster('cluster.ack: local, while the stream takes nothing', () => {
  const fixture = useMqttCluster(NODES, {
    env: {
      PROJ_CLUSTER_ACK: 'local',
      PROJ_CLUSTER_OUTBOXLIMIT: String(LIMIT),
      // the old owner gets this long to publish its outbox before a hand-over goes on without it
      PROJ_CLUSTER_WRITETIMEOUT: '15s',
    },
  })
  const gate = streamGate(() => fixture.cluster.nats.urls)
  afterAll(async () => {
    await gate.open().catch(() => {})
    await gate.close()
  })
  const log = (node: string) => fixture.cluster.node(node).process.output()
  /** When the test passed its steps (ms since the epoch, as the nodes' log lines say `time`). */
  const marks: string[] = []
  // a failure prints a's last lines at every level (the fixture prints warnings only): a SUBSCRIBE on a
  // that went unanswered once under the whole suite's load logged no warning at all
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') {
      const lines = log('a')
        .split('\n')
        .filter((l) => l !== '')
      console.error(
        `test: ${marks.join(', ')}; node a, last lines:\n${lines
          .slice(-60)
          .map((l) => l.slice(0, 400))
          .join('\n')}`,
      )
    }
    marks.length = 0
  })

  it('hands a session over only once its old node published what it acknowledged: subscriptions, messages and records arrive whole and in order', async () => {
    const options = {
      clientId: 'mover',
      protocolVersion: 5 as const,
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    }
    const onA = await fixture.mqttOn('a', options)
    await onA.subscribeAsync({ 'ho/before': { qos: 1 } })
    const publisher = await fixture.mqttOn('a', { clientId: 'ho-pub', protocolVersion: 5 })
    const watcher = await fixture.mqttOn('c', { protocolVersion: 5 })
    const watched = collect(watcher)
    await watcher.subscribeAsync({ 'ho/order': { qos: 1 } })

    await gate.shut()
    marks.push(`stream shut ${Date.now()}`)
    // acknowledged on a (committed there, in its outbox): a subscription, a message, a record
    await within('SUBSCRIBE on a', onA.subscribeAsync({ 'ho/added': { qos: 1 } }))
    marks.push(`SUBACK ${Date.now()}`)
    await within('PUBLISH on a', publisher.publishAsync('ho/order', 'first', { qos: 1 }))
    expect(
      (await send(fixture.cluster.node('a').http, 'PUT', 'Dog/ho', { name: 'from-a' })).status,
    ).toBeLessThan(300)
    await onA.endAsync()
    // a newer write of the same record on b (its outbox too)
    expect(
      (await send(fixture.cluster.node('b').http, 'PUT', 'Dog/ho', { name: 'from-b' })).status,
    ).toBeLessThan(300)

    // the session and the publisher move to b while a's outbox cannot be sent
    const resumed = fixture.resumeOn('b', options, collect)
    const moved = fixture.track(
      mqtt.connect(fixture.cluster.node('b').mqtt, {
        ...ADMIN,
        clientId: 'ho-pub',
        protocolVersion: 5,
        reconnectPeriod: 0,
      }),
    )
    const movedAck = connack(moved)
    let early = false
    void resumed.then(() => {
      early = !/waits for this node to publish its outbox/.test(log('a'))
    })
    // b waits for a's outbox (a says so); then the stream opens
    await expect
      .poll(() => early || /waits for this node to publish its outbox/.test(log('a')), { timeout: 15_000 })
      .toBe(true)
    await gate.open()
    const { got, sessionPresent } = await within('the resume on b', resumed, 30_000)
    expect(early).toBe(false) // not served before a's outbox was in the stream
    expect(sessionPresent).toBe(true)
    await within('CONNACK of the moved publisher', movedAck, 30_000)
    await within('PUBLISH on b', moved.publishAsync('ho/order', 'second', { qos: 1 }))

    // the subscription made on a counts on b; the publisher's messages arrive in its order
    const sender = await fixture.mqttOn('c', { protocolVersion: 5 })
    await sender.publishAsync('ho/added', 'new-sub', { qos: 1 })
    await sender.publishAsync('ho/before', 'sentinel', { qos: 1 })
    await expect.poll(() => got('ho/before').at(-1), { timeout: 15_000 }).toBe('sentinel')
    expect(got('ho/added')).toEqual(['new-sub'])
    await expect.poll(() => watched('ho/order'), { timeout: 15_000 }).toEqual(['first', 'second'])
    // the record: the later write wins on every node
    for (const node of NODES)
      await expect
        .poll(async () => (await getRecord(fixture.cluster.node(node).http, 'Dog/ho')).body, {
          timeout: 15_000,
        })
        .toMatchObject({ name: 'from-b' })
  }, 90_000)

  it(`refuses writes once ${LIMIT} wait in the outbox (HTTP 503 with Retry-After, MQTT 5 0x80), logged; accepts them again once it drained`, async () => {
    const http = fixture.cluster.node('a').http
    await gate.shut()
    let acked = 0
    let refused: Response | undefined
    for (let i = 0; i < 2 * LIMIT && refused === undefined; i++) {
      const res = await send(http, 'PUT', `Dog/full${i}`, { name: `full${i}` })
      if (res.status < 300) acked++
      else refused = res
    }
    expect(refused?.status).toBe(503)
    expect(refused?.headers.get('retry-after')).toBe('5')
    expect(acked).toBeGreaterThan(0)
    expect(acked).toBeLessThanOrEqual(LIMIT)
    expect(log('a')).toMatch(/the outbox is full/)
    // an MQTT 5 QoS 1 publish is refused the same way
    // (a write that was already on its way when the gate shut may leave the outbox meanwhile and make room
    // for one more: publish until the outbox is full again, as the HTTP loop did)
    const client = await fixture.mqttOn('a', { protocolVersion: 5 })
    let puback: number | undefined
    for (let i = 0; i < LIMIT && puback !== 0x80; i++)
      puback = await client.publishAsync('full/topic', `x${i}`, { qos: 1 }).then(
        (packet) => (packet as { reasonCode?: number } | undefined)?.reasonCode ?? 0,
        (error: { code?: number }) => error.code,
      )
    expect(puback).toBe(0x80)

    await gate.open()
    await expect
      .poll(async () => (await send(http, 'PUT', 'Dog/after-full', { name: 'after' })).status, {
        timeout: 20_000,
        interval: 250,
      })
      .toBeLessThan(300)
    expect(log('a')).toMatch(/the outbox has room again/)
    // everything acknowledged before the refusal reaches the other nodes
    for (let i = 0; i < acked; i++)
      await expect
        .poll(async () => (await getRecord(fixture.cluster.node('c').http, `Dog/full${i}`)).status, {
          timeout: 20_000,
        })
        .toBe(200)
  }, 90_000)
})
