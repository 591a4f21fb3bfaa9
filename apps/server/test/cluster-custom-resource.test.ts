// A custom resource door in a cluster (#15: "a put, patch or delete on any node, from any door (…,
// custom resource), reaches every node"): every node runs the same application (cluster-app/), whose
// resources.js has a resource writing the Dog table from its put and post (REST, and an MQTT retained
// publish through the base class) and one whose connect() is an async generator. Their writes and
// messages reach MQTT, WebSocket and SSE subscribers on every node; what the generator yields comes from
// the node it runs on.
import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { MqttClient } from 'mqtt'
import { afterAll, expect, it } from 'vitest'
import type WebSocket from 'ws'
import { describeCluster, getRecord, send, useMqttCluster, within } from './helpers/cluster.js'
import { type Envelope, openSse, openWs, withoutId } from './helpers/cluster-streams.js'

const NODES = ['a', 'b', 'c']
const APP = join(dirname(fileURLToPath(import.meta.url)), 'cluster-app')
const application = {
  'schema.graphql': await readFile(join(APP, 'schema.graphql'), 'utf8'),
  'resources.js': await readFile(join(APP, 'resources.js'), 'utf8'),
}

/** What an MQTT subscriber received: `topic payload` lines, in order. */
function received(client: MqttClient): string[] {
  const got: string[] = []
  client.on('message', (topic, payload) => got.push(`${topic} ${payload.toString()}`))
  return got
}

describeCluster('custom resources (resources.js) on every node of a three-node cluster', () => {
  const fixture = useMqttCluster(NODES, { application })
  const http = (name: string) => fixture.cluster.node(name).http
  const closers: (() => void)[] = []
  const track = (close: () => void) => closers.push(close)
  afterAll(() => {
    for (const close of closers.splice(0)) close()
  })

  it("delivers a custom resource's writes (REST PUT and POST, MQTT retained publish) and messages to MQTT, WebSocket and SSE subscribers on every node", async () => {
    const mqttGot = new Map<string, string[]>()
    const wsGot = new Map<string, Envelope[]>()
    const sseDogs = new Map<string, Envelope[]>()
    const sseIntake = new Map<string, Envelope[]>()
    for (const n of NODES) {
      const sub = await fixture.mqttOn(n, { protocolVersion: 5 })
      mqttGot.set(n, received(sub))
      await sub.subscribeAsync({ 'Dog/#': { qos: 1 }, 'Intake/#': { qos: 1 } })
      wsGot.set(n, (await openWs(http(n), '/Dog/', track)).got)
      sseDogs.set(n, await openSse(http(n), '/Dog/', track))
      sseIntake.set(n, await openSse(http(n), '/Intake/', track))
    }
    // the custom door on each node: REST PUT on a, REST POST on b, an MQTT retained publish on c
    expect((await send(http('a'), 'PUT', 'Intake/put-a', { name: 'put-a' })).status).toBeLessThan(300)
    expect((await send(http('b'), 'POST', 'Intake/', { name: 'post-b' })).status).toBeLessThan(300)
    const publisher = await fixture.mqttOn('c', { protocolVersion: 5 })
    await within(
      'retained publish to Intake/mqtt-c on c',
      publisher.publishAsync('Intake/mqtt-c', JSON.stringify({ name: 'mqtt-c' }), { qos: 1, retain: true }),
    )

    const records = {
      'put-a': { name: 'put-a', via: 'intake on a' },
      'post-b': { name: 'post-b', via: 'intake post on b' },
      'mqtt-c': { name: 'mqtt-c', via: 'intake on c' },
    }
    const recordLines = Object.entries(records).map(([id, value]) => `Dog/${id} ${JSON.stringify(value)}`)
    // what the POST published on b: a QoS 1 message (through the stream) and a QoS 0 one (relayed)
    const messages = ['Intake/admitted', 'Intake/seen'].map((t) => `${t} {"name":"post-b","by":"b"}`)
    for (const n of NODES) {
      await expect
        .poll(
          () =>
            mqttGot
              .get(n)!
              .map((line) => {
                const [topic, payload] = [line.slice(0, line.indexOf(' ')), line.slice(line.indexOf(' ') + 1)]
                return topic.startsWith('Dog/') ? `${topic} ${withoutId(JSON.parse(payload))}` : line
              })
              .sort(),
          { timeout: 10_000, interval: 50 },
        )
        .toEqual([...recordLines, ...messages].sort())
      for (const got of [wsGot.get(n)!, sseDogs.get(n)!])
        await expect
          .poll(() => got.map((e) => `${e.type} ${e.id} ${withoutId(e.value)}`).sort(), {
            timeout: 10_000,
            interval: 50,
          })
          .toEqual(
            Object.entries(records)
              .map(([id, v]) => `put ${id} ${JSON.stringify(v)}`)
              .sort(),
          )
      await expect
        .poll(
          () =>
            sseIntake
              .get(n)!
              .map((e) => `${e.type} ${e.id} ${JSON.stringify(e.value)}`)
              .sort(),
          {
            timeout: 10_000,
            interval: 50,
          },
        )
        .toEqual(['message admitted {"name":"post-b","by":"b"}', 'message seen {"name":"post-b","by":"b"}'])
      // and every node reads the records back, the same
      for (const [id, value] of Object.entries(records)) {
        const read = await getRecord(http(n), `Dog/${id}`)
        expect(read.status, `Dog/${id} on ${n}`).toBe(200)
        expect(read.body).toMatchObject(value)
      }
    }
  }, 60_000)

  it("runs a connect() async generator on each node: it yields every node's writes as its node applies them, and what its client sends reaches subscribers on every node", async () => {
    const streams = new Map<string, { ws: WebSocket; got: Envelope[] }>()
    const mqttGot = new Map<string, string[]>()
    for (const n of NODES) {
      const sub = await fixture.mqttOn(n, { protocolVersion: 5 })
      mqttGot.set(n, received(sub))
      await sub.subscribeAsync({ 'Watch/#': { qos: 1 } })
      const stream = await openWs(http(n), '/Watch/live', track)
      streams.set(n, stream)
      // the generator runs (and subscribed) once it yielded its first value
      await expect
        .poll(() => stream.got.map((e) => JSON.stringify(e.value)), { timeout: 10_000, interval: 20 })
        .toContain(JSON.stringify({ node: n, ready: true }))
    }
    // a plain table write on a, a custom-door write on b
    expect((await send(http('a'), 'PUT', 'Dog/gen-a', { name: 'gen-a' })).status).toBeLessThan(300)
    expect((await send(http('b'), 'PUT', 'Intake/gen-b', { name: 'gen-b' })).status).toBeLessThan(300)
    for (const n of NODES)
      await expect
        .poll(
          () =>
            streams
              .get(n)!
              .got.filter((e) => (e.value as { saw?: unknown } | undefined)?.saw !== undefined)
              .map((e) => JSON.stringify(e.value)),
          { timeout: 10_000, interval: 50 },
        )
        .toEqual([
          JSON.stringify({ node: n, saw: 'gen-a' }),
          JSON.stringify({ node: n, saw: 'gen-b', via: 'intake on b' }),
        ])

    // the generator on c publishes what its client sends: QoS 1 (the stream) and QoS 0 (the relay)
    streams.get('c')!.ws.send(JSON.stringify('hello from c'))
    const said = '{"said":"hello from c","by":"c"}'
    for (const n of NODES)
      await expect
        .poll(() => [...mqttGot.get(n)!].sort(), { timeout: 10_000, interval: 50 })
        .toEqual([`Watch/said ${said}`, `Watch/said0 ${said}`])
  }, 60_000)
})
