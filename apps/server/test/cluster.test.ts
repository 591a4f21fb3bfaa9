import { natsSkipReason } from '@proj/test-utils'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectMqtt } from './helpers/clients.js'
import { getRecord, health, send, startClusterNodes, waitReady } from './helpers/cluster.js'

const NODES = ['a', 'b', 'c']

describe.skipIf(natsSkipReason !== undefined)(
  'a cluster of three server processes on three NATS servers',
  () => {
    let cluster: Awaited<ReturnType<typeof startClusterNodes>>
    const http = (name: string) => cluster.node(name).http

    beforeAll(async () => {
      cluster = await startClusterNodes(NODES)
    }, 60_000)
    afterAll(async () => {
      await cluster?.stop()
    })

    /** Every node answers the same status, body and ETag for each path (polled until writes settle). */
    async function expectConverged(paths: string[]) {
      for (const path of paths) {
        await expect
          .poll(
            async () => {
              const answers = await Promise.all(NODES.map((n) => getRecord(http(n), path)))
              return answers.every((a) => JSON.stringify(a) === JSON.stringify(answers[0]))
                ? 'same'
                : JSON.stringify(answers)
            },
            { timeout: 10_000, interval: 100 },
          )
          .toBe('same')
      }
    }

    it('reports ready in /health with the node name', async () => {
      for (const name of NODES) {
        const h = await health(http(name))
        expect(h).toMatchObject({ status: 'ok', cluster: 'ready', node: name })
      }
    })

    it('shows a write made on one node on the others, with the same ETag', async () => {
      const put = await send(http('a'), 'PUT', 'Dog/1', { name: 'Rex', age: 3 })
      expect(put.status).toBeLessThan(300)
      const onA = await getRecord(http('a'), 'Dog/1')
      expect(onA.body).toMatchObject({ name: 'Rex', age: 3 })
      await expectConverged(['Dog/1'])
      expect((await getRecord(http('c'), 'Dog/1')).etag).toBe(onA.etag)
    })

    it('converges concurrent puts, patches, deletes and MQTT retained publishes from every node', async () => {
      const clients = await Promise.all(
        NODES.map((n) =>
          connectMqtt(cluster.node(n).mqtt, { username: 'admin', password: 'pw', protocolVersion: 5 }),
        ),
      )
      try {
        const writes: Promise<unknown>[] = []
        for (let round = 0; round < 12; round++) {
          for (const [i, name] of NODES.entries()) {
            const id = `c${(round + i) % 4}`
            if (round % 3 === 0)
              writes.push(send(http(name), 'PUT', `Dog/${id}`, { name: `${name}${round}` }))
            if (round % 3 === 1) writes.push(send(http(name), 'PATCH', `Dog/${id}`, { age: round }))
            if (round % 3 === 2)
              writes.push(
                clients[i]!.publishAsync(`Dog/${id}`, JSON.stringify({ name: `mqtt-${name}${round}` }), {
                  qos: 1,
                  retain: true,
                }),
              )
            if (round === 7 && i === 1) writes.push(send(http(name), 'DELETE', `Dog/c3`))
          }
        }
        const results = await Promise.all(writes)
        // a PATCH or DELETE that reaches a node before the record's first PUT is a 404 there, as on one node
        for (const r of results) if (r instanceof Response) expect([200, 201, 204, 404]).toContain(r.status)
        expect(results.filter((r) => r instanceof Response && r.status < 300).length).toBeGreaterThan(15)
        await expectConverged(['Dog/c0', 'Dog/c1', 'Dog/c2', 'Dog/c3', 'Dog/'])
      } finally {
        await Promise.all(clients.map((c) => c.endAsync()))
      }
    })

    it('catches a restarted node up before it serves, and says so', async () => {
      await cluster.node('c').process.stop()
      for (let i = 0; i < 30; i++) {
        const res = await send(http(i % 2 ? 'a' : 'b'), 'PUT', `Dog/r${i}`, { name: `r${i}` })
        expect(res.status).toBeLessThan(300)
      }
      const c = await cluster.start('c')
      await waitReady(c.http)
      expect(c.process.output()).toMatch(/cluster: catching up/)
      expect(c.process.output()).toMatch(/cluster: caught up/)
      // the node held nothing back: all 30 writes made while it was down are there
      const list = await getRecord(c.http, 'Dog/?limit=1000')
      expect(
        (list.body as unknown[]).filter((d) => String((d as { id: string }).id).startsWith('r')),
      ).toHaveLength(30)
      await expectConverged(['Dog/r29', 'Dog/1'])
    })
  },
)
