// A node cut off from NATS while the rest of the cluster goes on: its writes fail (never acknowledged
// falsely), and once the link is back it catches up with what was written around it.
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net'
import { natsSkipReason } from '@proj/test-utils'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getRecord, printNodeWarnings, send, startClusterNodes, waitReady } from './helpers/cluster.js'

/** A loopback TCP proxy in front of one NATS server that the test can cut and heal. */
async function startLink(target: URL) {
  const sockets = new Set<Socket>()
  let open = true
  const server: Server = createServer((client) => {
    if (!open) return void client.destroy()
    const upstream = tcpConnect(Number(target.port), target.hostname)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
      s.on('error', () => {})
    }
    client.pipe(upstream).pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    url: `nats://127.0.0.1:${port}`,
    cut() {
      open = false
      for (const s of sockets) s.destroy()
    },
    heal() {
      open = true
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

describe.skipIf(natsSkipReason !== undefined)(
  `a node partitioned from NATS${natsSkipReason ? ` (skipped: ${natsSkipReason})` : ''}`,
  () => {
    let cluster: Awaited<ReturnType<typeof startClusterNodes>>
    let links: Awaited<ReturnType<typeof startLink>>[] = []
    const http = (name: string) => cluster.node(name).http

    beforeAll(async () => {
      // the NATS servers do not advertise their own client URLs, so node c cannot go around the links
      cluster = await startClusterNodes(['a', 'b'], { natsClusterConfig: ['no_advertise: true'] })
      links = await Promise.all(cluster.nats.urls.map((u) => startLink(new URL(u))))
      // node c reaches every NATS server only through a link the test can cut
      await cluster.start('c', { PROJ_CLUSTER_NATS_SERVERS: links.map((l) => l.url).join(',') })
      await waitReady(http('c'))
    }, 90_000)
    afterAll(async () => {
      await cluster?.stop()
      await Promise.all(links.map((l) => l.close()))
    })

    it('refuses writes while cut off, and catches up with the writes made around it once the link is back', async () => {
      try {
        expect((await send(http('a'), 'PUT', 'Dog/part', { name: 'before' })).status).toBeLessThan(300)
        await expect
          .poll(async () => (await getRecord(http('c'), 'Dog/part')).body, { timeout: 10_000 })
          .toMatchObject({ name: 'before' })

        for (const link of links) link.cut()
        // written around it: a put on a, a new record on b
        expect((await send(http('a'), 'PUT', 'Dog/part', { name: 'during' })).status).toBeLessThan(300)
        expect((await send(http('b'), 'PUT', 'Dog/part-new', { name: 'new' })).status).toBeLessThan(300)
        // a write on the cut-off node fails (503 once its write timeout passes), never acknowledged
        const refused = await send(http('c'), 'PUT', 'Dog/part-c', { name: 'lost' })
        expect(refused.status).toBe(503)

        for (const link of links) link.heal()
        await expect
          .poll(async () => (await getRecord(http('c'), 'Dog/part')).body, { timeout: 20_000, interval: 200 })
          .toMatchObject({ name: 'during' })
        // applied in stream order, possibly in a later commit than the put it follows
        await expect
          .poll(async () => (await getRecord(http('c'), 'Dog/part-new')).body, {
            timeout: 10_000,
            interval: 200,
          })
          .toMatchObject({ name: 'new' })
        // the refused write is nowhere
        for (const n of ['a', 'b', 'c']) expect((await getRecord(http(n), 'Dog/part-c')).status).toBe(404)
        // and the node writes again
        expect((await send(http('c'), 'PUT', 'Dog/part-c', { name: 'after' })).status).toBeLessThan(300)
        await expect
          .poll(async () => (await getRecord(http('a'), 'Dog/part-c')).body, { timeout: 10_000 })
          .toMatchObject({ name: 'after' })
      } catch (error) {
        printNodeWarnings(cluster, ['a', 'b', 'c'])
        throw error
      }
    }, 90_000)
  },
)
