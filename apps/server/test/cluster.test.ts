import { natsSkipNote, natsSkipReason } from '@proj/test-utils'
import { EventSource } from 'eventsource'
import type { MqttClient } from 'mqtt'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { connectMqtt } from './helpers/clients.js'
import {
  AUTH,
  getRecord,
  health,
  printNodeWarnings,
  send,
  startClusterNodes,
  within,
} from './helpers/cluster.js'

const NODES = ['a', 'b', 'c']

/** Every payload the client receives, as text, listed per topic in arrival order. */
function payloadsByTopic(client: MqttClient): Map<string, string[]> {
  const received = new Map<string, string[]>()
  client.on('message', (topic, payload) => {
    const list = received.get(topic) ?? []
    list.push(payload.toString())
    received.set(topic, list)
  })
  return received
}

describe.skipIf(natsSkipReason !== undefined)(
  `a cluster of three server processes on three NATS servers${natsSkipNote}`,
  () => {
    let cluster: Awaited<ReturnType<typeof startClusterNodes>>
    const http = (name: string) => cluster.node(name).http

    beforeAll(async () => {
      cluster = await startClusterNodes(NODES)
    }, 60_000)
    afterAll(async () => {
      await cluster?.stop()
    })
    // a failure shows what the nodes warned about (a write not applied in time names its positions)
    afterEach((ctx) => {
      if (ctx.task.result?.state === 'fail' && cluster !== undefined) printNodeWarnings(cluster, NODES)
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

    it('creates the first admin on one node only, so no node takes it for deleted', async () => {
      // the nodes started together, each found no admin; a second creation would replace the first
      // (another user id), and the node that made the first would end the admin's connections
      const created = NODES.filter((n) =>
        /created the first admin user/.test(cluster.node(n).process.output()),
      )
      expect(created).toHaveLength(1)
      const admins = await Promise.all(
        NODES.map(async (n) => {
          const res = await fetch(`${http(n)}/_admin/me`, { headers: { Authorization: AUTH } })
          return res.status
        }),
      )
      expect(admins).toEqual([200, 200, 200])
    })

    it('shows a write made on one node on the others, with the same ETag', async () => {
      const put = await send(http('a'), 'PUT', 'Dog/1', { name: 'Rex', age: 3 })
      expect(put.status).toBeLessThan(300)
      const onA = await getRecord(http('a'), 'Dog/1')
      expect(onA.body).toMatchObject({ name: 'Rex', age: 3 })
      await expectConverged(['Dog/1'])
      expect((await getRecord(http('c'), 'Dog/1')).etag).toBe(onA.etag)
    })

    it('makes If-Match a compare-and-set across nodes: of two nodes writing at once with the same ETag, one wins (2xx), the other gets 412, and every node holds the winner', async () => {
      const putIfMatch = async (node: string, etag: string, name: string) => {
        const res = await fetch(`${http(node)}/Dog/cas`, {
          method: 'PUT',
          headers: { Authorization: AUTH, 'Content-Type': 'application/json', 'If-Match': etag },
          body: JSON.stringify({ name }),
          signal: AbortSignal.timeout(15_000),
        })
        await res.arrayBuffer()
        return { status: res.status, etag: res.headers.get('etag'), name }
      }
      expect((await send(http('a'), 'PUT', 'Dog/cas', { name: 'start' })).status).toBeLessThan(300)
      for (let round = 0; round < 20; round++) {
        await expectConverged(['Dog/cas'])
        const { etag } = await getRecord(http('a'), 'Dog/cas')
        const [x, y] = round % 2 ? ['b', 'c'] : ['c', 'a']
        const answers = await Promise.all([
          putIfMatch(x, etag!, `${x}-${round}`),
          putIfMatch(y, etag!, `${y}-${round}`),
        ])
        const statuses = answers.map((a) => a.status).sort()
        expect(statuses[0], `round ${round}: ${JSON.stringify(answers)}`).toBeLessThan(300)
        expect(statuses[1], `round ${round}: ${JSON.stringify(answers)}`).toBe(412)
        const winner = answers.find((a) => a.status < 300)!
        for (const node of NODES)
          await expect
            .poll(async () => {
              const r = await getRecord(http(node), 'Dog/cas')
              return [(r.body as { name: string }).name, r.etag]
            })
            .toEqual([winner.name, winner.etag])
      }
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
                within(
                  `MQTT publish Dog/${id} on ${name} (round ${round})`,
                  clients[i]!.publishAsync(`Dog/${id}`, JSON.stringify({ name: `mqtt-${name}${round}` }), {
                    qos: 1,
                    retain: true,
                  }),
                ),
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

    it('delivers every non-retained message published on one node to subscribers on the others', async () => {
      const N = 25
      const options = { username: 'admin', password: 'pw', protocolVersion: 5 as const }
      const subscribers = await Promise.all(['b', 'c'].map((n) => connectMqtt(cluster.node(n).mqtt, options)))
      const publisher = await connectMqtt(cluster.node('a').mqtt, options)
      try {
        const received = subscribers.map(payloadsByTopic)
        for (const sub of subscribers) {
          await sub.subscribeAsync({
            'news/q0': { qos: 0 },
            'news/q1': { qos: 1 },
            'news/q2': { qos: 2 },
            'Dog/m': { qos: 2 },
          })
        }
        const sends: Promise<unknown>[] = []
        for (let k = 0; k < N; k++) {
          for (const qos of [0, 1, 2] as const)
            sends.push(publisher.publishAsync(`news/q${qos}`, String(k), { qos }))
          sends.push(publisher.publishAsync('Dog/m', JSON.stringify({ name: `m${k}` }), { qos: 1 }))
        }
        await Promise.all(sends)
        // a sentinel per level, published last: once it arrived, everything before it had its chance
        await publisher.publishAsync('news/q0', 'end', { qos: 0 })
        await publisher.publishAsync('news/q2', 'end', { qos: 2 })
        const all = Array.from({ length: N }, (_, k) => String(k))
        for (const r of received) {
          await expect.poll(() => r.get('news/q2')?.at(-1), { timeout: 10_000 }).toBe('end')
          await expect.poll(() => r.get('news/q0')?.at(-1), { timeout: 10_000 }).toBe('end')
          expect(r.get('news/q2')).toEqual([...all, 'end']) // exactly once, in order
          expect(new Set(r.get('news/q1'))).toEqual(new Set(all)) // at least once
          expect(r.get('news/q0')).toEqual([...all, 'end']) // loopback: nothing lost
          expect(r.get('Dog/m')?.map((p) => JSON.parse(p).name)).toEqual(all.map((k) => `m${k}`))
        }
      } finally {
        await Promise.all([...subscribers, publisher].map((c: MqttClient) => c.endAsync()))
      }
    }, 60_000)

    it('delivers non-retained QoS 1 messages published on every node to subscribers on every node', async () => {
      const N = 20
      const options = { username: 'admin', password: 'pw', protocolVersion: 5 as const }
      const nodes = ['a', 'b', 'c']
      const subscribers = await Promise.all(nodes.map((n) => connectMqtt(cluster.node(n).mqtt, options)))
      const publishers = await Promise.all(nodes.map((n) => connectMqtt(cluster.node(n).mqtt, options)))
      try {
        const received = subscribers.map(payloadsByTopic)
        for (const sub of subscribers) {
          await sub.subscribeAsync({ 'every/#': { qos: 1 } })
        }
        // every node publishes at once, each on its own topic; then a sentinel each (after its others in
        // the stream's order)
        await Promise.all(
          publishers.map(async (p, i) => {
            const sends: Promise<unknown>[] = []
            for (let k = 0; k < N; k++) sends.push(p.publishAsync(`every/${nodes[i]}`, String(k), { qos: 1 }))
            await Promise.all(sends)
            await p.publishAsync(`every/${nodes[i]}`, 'end', { qos: 1 })
          }),
        )
        const all = new Set(Array.from({ length: N }, (_, k) => String(k)))
        for (const r of received)
          for (const origin of nodes) {
            await expect.poll(() => r.get(`every/${origin}`)?.includes('end'), { timeout: 15_000 }).toBe(true)
            expect(new Set(r.get(`every/${origin}`)!.filter((m) => m !== 'end'))).toEqual(all) // at least once
          }
      } finally {
        await Promise.all([...subscribers, ...publishers].map((c: MqttClient) => c.endAsync()))
      }
    }, 60_000)

    it('streams a write on one node to SSE subscribers on another', async () => {
      const sse = new EventSource(`${http('c')}/Dog/sse`, {
        fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, Authorization: AUTH } }),
      })
      try {
        const events: { type: string; id: string; data: unknown }[] = []
        sse.addEventListener('put', (e) =>
          events.push({ type: e.type, id: e.lastEventId, data: JSON.parse(e.data).value }),
        )
        await new Promise<void>((resolve, reject) => {
          sse.onopen = () => resolve()
          sse.onerror = (e) => reject(new Error(`SSE failed: ${e.message}`))
        })
        expect((await send(http('a'), 'PUT', 'Dog/sse', { name: 'over the wire' })).status).toBeLessThan(300)
        await expect.poll(() => events.length, { timeout: 10_000 }).toBeGreaterThan(0)
        expect(events.at(-1)!.data).toMatchObject({ name: 'over the wire' })
        // the event id is a cluster-wide cursor: resuming from it on another node replays what follows
        const id = events.at(-1)!.id
        expect((await send(http('b'), 'PATCH', 'Dog/sse', { age: 9 })).status).toBeLessThan(300)
        const res = await fetch(`${http('a')}/Dog/sse`, {
          headers: { Authorization: AUTH, Accept: 'text/event-stream', 'Last-Event-ID': id },
        })
        const reader = res.body!.getReader()
        let text = ''
        while (!/"age":9/.test(text)) text += new TextDecoder().decode((await reader.read()).value)
        await reader.cancel()
        // resumed after the put: only the patch made on b follows, under a later cursor
        const ids = [...text.matchAll(/^id: ?(\d+)$/gm)].map((m) => Number(m[1]))
        expect(ids.length).toBeGreaterThan(0)
        expect(Math.min(...ids)).toBeGreaterThan(Number(id))
      } finally {
        sse.close()
      }
    })

    it('catches a restarted node up before it serves: no stale read from the moment it listens, catching-up then ready in /health within 10 s', async () => {
      // a record the node holds an old value of, and enough writes around it that catching up takes a while
      expect((await send(http('a'), 'PUT', 'Dog/rold', { name: 'old' })).status).toBeLessThan(300)
      await expectConverged(['Dog/rold'])
      await cluster.node('c').process.stop()
      const filler = 'x'.repeat(4000)
      let next = 0
      await Promise.all(
        Array.from({ length: 6 }, async (_, w) => {
          while (next < 300) {
            const i = next++
            const res = await send(http(w % 2 ? 'a' : 'b'), 'PUT', `Dog/r${i}`, { name: `r${i}`, filler })
            expect(res.status).toBeLessThan(300)
          }
        }),
      )
      expect((await send(http('b'), 'PUT', 'Dog/rold', { name: 'new' })).status).toBeLessThan(300)
      const c = await cluster.start('c')
      const listening = Date.now()
      // from the moment it listens: /health says catching-up (503) until ready (200); every read of the
      // record it held is the new value or a 503 saying catching-up, never the old one
      const states: string[] = []
      const reads: string[] = []
      let readyAt = 0
      const polling = (async () => {
        while (readyAt === 0 && Date.now() - listening < 15_000) {
          const res = await fetch(`${c.http}/health`)
          const body = (await res.json()) as { cluster?: string }
          const state = `${res.status} ${body.cluster}`
          if (states.at(-1) !== state) states.push(state)
          if (body.cluster === 'ready') readyAt = Date.now()
          else await new Promise((r) => setTimeout(r, 10))
        }
      })()
      const reading = (async () => {
        while (readyAt === 0 && Date.now() - listening < 15_000) {
          const r = await getRecord(c.http, 'Dog/rold')
          const seen = r.status === 200 ? (r.body as { name: string }).name : `${r.status} ${r.body}`
          if (reads.at(-1) !== seen) reads.push(seen)
        }
      })()
      await Promise.all([polling, reading])
      // on a quiet machine the node may have caught up before the first poll reached it: then only ready
      // is seen (the log lines below still show it caught up first)
      expect([['503 catching-up', '200 ready'], ['200 ready']]).toContainEqual(states)
      expect(readyAt - listening).toBeLessThan(10_000)
      expect(reads.filter((r) => r !== 'new' && !/^503 .*catching-up/.test(r))).toEqual([])
      expect(c.process.output()).toMatch(/cluster: catching up/)
      expect(c.process.output()).toMatch(/cluster: caught up/)
      // the node held nothing back: all 300 writes made while it was down are there
      const list = await getRecord(c.http, 'Dog/?limit=1000')
      expect(
        (list.body as unknown[]).filter((d) => /^r\d+$/.test(String((d as { id: string }).id))),
      ).toHaveLength(300)
      await expectConverged(['Dog/r299', 'Dog/rold', 'Dog/1'])
    }, 90_000)
  },
)
