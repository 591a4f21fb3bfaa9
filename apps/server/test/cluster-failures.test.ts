import { afterAll, beforeAll, expect, it } from 'vitest'
import { connectMqtt } from './helpers/clients.js'
import { describeCluster, getRecord, send, startClusterNodes, waitReady } from './helpers/cluster.js'
import { expectPresent, streamLeader, writeLoop } from './helpers/cluster-load.js'

const NODES = ['a', 'b', 'c']

describeCluster('a cluster under failures', () => {
  let cluster: Awaited<ReturnType<typeof startClusterNodes>>
  const http = (name: string) => cluster.node(name).http

  beforeAll(async () => {
    cluster = await startClusterNodes(NODES)
  }, 60_000)
  afterAll(async () => {
    await cluster?.stop()
  })

  it('loses nothing acknowledged when a node is SIGKILLed under load, and the node comes back complete', async () => {
    const load = writeLoop(() => http('a'), 'k')
    await expect.poll(() => load.acked.length, { timeout: 10_000 }).toBeGreaterThan(40)
    cluster.node('a').process.child.kill('SIGKILL')
    await load.stop()
    await cluster.node('a').process.exited
    // requests cut by the kill fail; nothing was refused before it
    expect(load.refused.filter((r) => typeof r === 'number')).toEqual([])
    const acked = [...load.acked]
    await expect.poll(async () => (await getRecord(http('c'), `Dog/${acked.at(-1)}`)).status).toBe(200)
    await expectPresent(http('b'), acked)
    await expectPresent(http('c'), acked)
    const a = await cluster.start('a')
    await waitReady(a.http)
    await expectPresent(http('a'), acked)
  })

  it('fails a write without a JetStream quorum (HTTP 503, MQTT 5 PUBACK 0x80, 3.1.1 closed) and recovers once NATS is back', async () => {
    await cluster.nats.kill(1)
    await cluster.nats.kill(2)
    const started = Date.now()
    const res = await send(http('a'), 'PUT', 'Dog/noquorum', { name: 'lost' })
    expect(res.status).toBe(503)
    expect(res.headers.get('retry-after')).toBe('1')
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
    // the consumers re-create once NATS is back, slower on a loaded machine
    await Promise.all(
      NODES.map((node) =>
        expect
          .poll(async () => (await getRecord(http(node), 'Dog/back')).status, { timeout: 40_000 })
          .toBe(200),
      ),
    )
  }, 90_000)
})

describeCluster('a cluster losing one NATS server of three', () => {
  let cluster: Awaited<ReturnType<typeof startClusterNodes>>
  const http = (name: string) => cluster.node(name).http

  // A write waits (retrying inside the server) up to the write timeout, here the default (10 s):
  // longer than an election, so a write is delayed, not refused.
  beforeAll(async () => {
    cluster = await startClusterNodes(NODES, { env: { PROJ_CLUSTER_WRITETIMEOUT: undefined } })
  }, 60_000)
  afterAll(async () => {
    await cluster?.stop()
  })

  // The server that leads the stream is killed: the stream elects a new leader (seconds) and writes wait
  // for it (the publish retries with the same message id); a node whose consumer was on that server
  // reads the stream directly from the new leader until it has a consumer again (creating one waits for
  // the JetStream meta group, which may take much longer on a loaded machine).
  it('delays writes while JetStream elects a new stream leader, refuses none, and loses nothing', async () => {
    const load = writeLoop(() => http('b'), 'n', 2)
    await expect.poll(() => load.acked.length, { timeout: 15_000 }).toBeGreaterThan(10)
    // the worst server to lose: the stream's leader
    const leader = await streamLeader(cluster.nats)
    await cluster.nats.kill(leader)
    const before = load.acked.length
    await expect.poll(() => load.acked.length, { timeout: 45_000 }).toBeGreaterThan(before + 20)
    await cluster.nats.restart(leader)
    const after = load.acked.length
    await expect.poll(() => load.acked.length, { timeout: 30_000 }).toBeGreaterThan(after + 10)
    await load.stop()
    // every write succeeded (no 503, no request error), each within the default write timeout (10 s; the
    // apply after the stream's acknowledgement and the HTTP round trip add well under a second)
    expect(load.refused).toEqual([])
    expect(load.slowestMs).toBeLessThan(11_000)
    for (const node of NODES) {
      await expect
        .poll(async () => (await getRecord(http(node), `Dog/${load.acked.at(-1)}`)).status, {
          timeout: 15_000,
        })
        .toBe(200)
      await expectPresent(http(node), load.acked)
    }
  }, 150_000)
})
