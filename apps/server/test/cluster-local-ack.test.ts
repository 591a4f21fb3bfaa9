import { natsSkipNote, natsSkipReason } from '@proj/test-utils'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { connectMqtt } from './helpers/clients.js'
import {
  ADMIN,
  collectPayloads,
  getRecord,
  printNodeWarnings,
  send,
  startClusterNodes,
  waitReady,
} from './helpers/cluster.js'
import { connectionsByServer } from './helpers/cluster-load.js'

const NODES = ['a', 'b', 'c']

/** Polls until `id` reads `name` on every node. */
async function expectEverywhere(http: (node: string) => string, id: string, name: string) {
  for (const node of NODES)
    await expect
      .poll(async () => (await getRecord(http(node), `Dog/${id}`)).body, { timeout: 30_000, interval: 200 })
      .toMatchObject({ name })
}

describe.skipIf(natsSkipReason !== undefined)(`a cluster with cluster.ack: local${natsSkipNote}`, () => {
  let cluster: Awaited<ReturnType<typeof startClusterNodes>>
  const http = (name: string) => cluster.node(name).http

  beforeAll(async () => {
    cluster = await startClusterNodes(NODES, { env: { PROJ_CLUSTER_ACK: 'local' } })
  }, 60_000)
  afterAll(async () => {
    await cluster?.stop()
  })
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail' && cluster !== undefined) printNodeWarnings(cluster, NODES)
  })

  it('acknowledges writes while NATS is stopped (read back at once on their node); they reach the other nodes once it returns', async () => {
    await Promise.all([0, 1, 2].map((i) => cluster.nats.kill(i)))
    const started = Date.now()
    for (let i = 0; i < 5; i++) {
      const res = await send(http('a'), 'PUT', `Dog/offline${i}`, { name: `offline${i}` })
      expect(res.status).toBeLessThan(300)
    }
    // well within the write timeout (3 s): nothing waited for NATS
    expect(Date.now() - started).toBeLessThan(3000)
    expect((await getRecord(http('a'), 'Dog/offline4')).body).toMatchObject({ name: 'offline4' })
    expect((await getRecord(http('b'), 'Dog/offline4')).status).toBe(404)
    await Promise.all([0, 1, 2].map((i) => cluster.nats.restart(i)))
    for (let i = 0; i < 5; i++) await expectEverywhere(http, `offline${i}`, `offline${i}`)
  }, 120_000)

  it('publishes its outbox after a SIGKILL right after acknowledging, once restarted', async () => {
    // NATS unreachable for the node: nothing leaves its outbox before the kill
    await Promise.all([0, 1, 2].map((i) => cluster.nats.kill(i)))
    for (let i = 0; i < 3; i++)
      expect((await send(http('a'), 'PUT', `Dog/killed${i}`, { name: `killed${i}` })).status).toBeLessThan(
        300,
      )
    cluster.node('a').process.child.kill('SIGKILL')
    await cluster.node('a').process.exited
    await Promise.all([0, 1, 2].map((i) => cluster.nats.restart(i)))
    const a = await cluster.start('a')
    await waitReady(a.http)
    for (let i = 0; i < 3; i++) await expectEverywhere(http, `killed${i}`, `killed${i}`)
    // and under load with NATS up: every write acknowledged before the kill reaches the others
    const acked: string[] = []
    let stop = false
    const writer = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const id = `load${w}-${i}`
        try {
          if ((await send(http('a'), 'PUT', `Dog/${id}`, { name: id })).status < 300) acked.push(id)
        } catch {
          // the node died mid-request: not acknowledged
        }
      }
    }
    const writers = Promise.all([0, 1, 2, 3].map(writer))
    await expect.poll(() => acked.length, { timeout: 15_000 }).toBeGreaterThan(30)
    cluster.node('a').process.child.kill('SIGKILL')
    stop = true
    await writers
    await cluster.node('a').process.exited
    const restarted = await cluster.start('a')
    await waitReady(restarted.http)
    for (const node of ['b', 'c']) {
      await expect
        .poll(
          async () => {
            const list = (await getRecord(http(node), 'Dog/?limit=100000')).body as { id: string }[]
            const have = new Set(list.map((d) => d.id))
            return acked.filter((id) => !have.has(id))
          },
          { timeout: 30_000, interval: 250 },
        )
        .toEqual([])
    }
  }, 150_000)

  it('converges every node on the same value and ETag under concurrent writes from every node', async () => {
    const writes: Promise<Response>[] = []
    for (let round = 0; round < 15; round++)
      for (const node of NODES)
        writes.push(send(http(node), 'PUT', `Dog/race${round % 3}`, { name: `${node}-${round}` }))
    for (const res of await Promise.all(writes)) expect(res.status).toBeLessThan(300)
    const read = async () =>
      Promise.all(
        NODES.map(async (node) =>
          Promise.all(
            [0, 1, 2].map(async (i) => {
              const r = await getRecord(http(node), `Dog/race${i}`)
              return [r.body, r.etag]
            }),
          ),
        ),
      )
    await expect
      .poll(
        async () => {
          const [a, b, c] = await read()
          return JSON.stringify(b) === JSON.stringify(a) && JSON.stringify(c) === JSON.stringify(a)
        },
        { timeout: 30_000, interval: 250 },
      )
      .toBe(true)
  }, 90_000)

  it("answers a durable session's SUBSCRIBE, UNSUBSCRIBE and QoS 1 PUBLISH at once while JetStream has no quorum (its requests go unanswered); they count on the other nodes once it is back", async () => {
    const durable = {
      ...ADMIN,
      clientId: 'no-quorum',
      protocolVersion: 5 as const,
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    }
    const client = await connectMqtt(cluster.node('a').mqtt, durable)
    const onA = collectPayloads(client)
    await client.subscribeAsync({ 'nq/gone': { qos: 1 } })
    // the two NATS servers a's connection is not on are frozen: a's requests reach a server that can
    // neither elect a leader nor answer for one (the KV buckets' and the stream's), so they time out
    const home = (await connectionsByServer(cluster.nats)).get('proj-a')
    expect(home).toBeDefined()
    const frozen = [0, 1, 2].filter((i) => i !== home).map((i) => cluster.nats.servers[i]!.pid!)
    for (const pid of frozen) process.kill(pid, 'SIGSTOP')
    const took: Record<string, number> = {}
    const timed = async (what: string, work: () => Promise<unknown>) => {
      const started = Date.now()
      await work()
      took[what] = Date.now() - started
    }
    try {
      await timed('SUBSCRIBE', () => client.subscribeAsync({ 'nq/added': { qos: 1 } }))
      await timed('UNSUBSCRIBE', () => client.unsubscribeAsync('nq/gone'))
      await timed('PUBLISH', () => client.publishAsync('nq/added', 'during', { qos: 1 }))
    } finally {
      for (const pid of frozen) process.kill(pid, 'SIGCONT')
    }
    // a local commit and the outbox: well under the bounds of the requests that go unanswered (2 s for
    // the client owners, 3 s for a write to the stream)
    console.log(`while JetStream had no quorum, ms to the acknowledgement: ${JSON.stringify(took)}`)
    for (const [what, ms] of Object.entries(took)) expect(ms, what).toBeLessThan(2000)
    await expect.poll(() => onA('nq/added')).toEqual(['during'])
    await client.endAsync()
    // JetStream back: a's outbox, in commit order, reaches b (a record written after it shows it)
    expect((await send(http('a'), 'PUT', 'Dog/nq-sentinel', { name: 'sentinel' })).status).toBeLessThan(300)
    await expectEverywhere(http, 'nq-sentinel', 'sentinel')
    // the session as changed, on another node once JetStream is back: a message arrives on the added
    // subscription and none on the removed one
    const resumed = await connectMqtt(cluster.node('b').mqtt, durable)
    const got = collectPayloads(resumed)
    const sender = await connectMqtt(cluster.node('c').mqtt, { ...ADMIN, protocolVersion: 5 })
    await sender.publishAsync('nq/gone', 'removed', { qos: 1 })
    await sender.publishAsync('nq/added', 'after', { qos: 1 })
    // (the message acknowledged on a may come again: QoS 1, and cursors under ack: local are per node)
    await expect.poll(() => got('nq/added').at(-1), { timeout: 30_000 }).toBe('after')
    expect(got('nq/gone')).toEqual([])
    await Promise.all([resumed.endAsync(), sender.endAsync()])
  }, 90_000)
})
