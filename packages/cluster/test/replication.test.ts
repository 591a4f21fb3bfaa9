import { openStore, type Store } from '@proj/storage'
import { natsSkipNote, natsSkipReason, startNatsCluster, tempDir } from '@proj/test-utils'
import { afterEach, describe, expect, it } from 'vitest'
import { joinCluster } from '../src/index.js'

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {})
})

async function node(urls: string[], name: string, path?: string, replicas = 3, writeTimeoutMs = 3000) {
  const dir = path === undefined ? await tempDir('proj-cluster-') : undefined
  if (dir) cleanups.push(() => dir.remove())
  const cluster = await joinCluster({ servers: urls, nodeName: name, replicas, writeTimeoutMs })
  const store = await openStore({
    path: path ?? dir!.path,
    nodeId: cluster.nodeId,
    replicator: cluster.replicator,
    compactionIntervalMs: 0,
  })
  const close = async () => {
    await cluster.close()
    await store.close()
  }
  cleanups.push(close)
  cluster.start(store)
  await cluster.ready()
  return { cluster, store, path: path ?? dir!.path, close }
}

describe.skipIf(natsSkipReason !== undefined)(`stores replicated over JetStream${natsSkipNote}`, () => {
  it('converges three stores on concurrent writes from every node: same values, versions and cursors', async () => {
    const nats = await startNatsCluster({ size: 3 })
    cleanups.push(() => nats.stop())
    const nodes = await Promise.all(['a', 'b', 'c'].map((n, i) => node([nats.urls[i]!], n)))
    const writes: Promise<unknown>[] = []
    for (let round = 0; round < 20; round++) {
      for (const [i, n] of nodes.entries()) {
        const dogs = n.store.table('Dog')
        writes.push(dogs.put(`d${round % 5}`, { by: i, round }))
        if (round % 4 === 3) writes.push(dogs.patch(`d${(round + i) % 5}`, { patched: i }))
        if (round % 7 === 6) writes.push(dogs.delete(`d${i}`))
      }
    }
    await Promise.all(writes)
    const last = Math.max(...nodes.map((n) => n.cluster.positions().stream))
    for (const n of nodes) await expect.poll(() => n.store.replicatedPosition, { timeout: 10_000 }).toBe(last)
    const snapshot = (s: Store) => ({
      records: [...s.table('Dog').entries()],
      versions: ['d0', 'd1', 'd2', 'd3', 'd4'].map((id) => s.table('Dog').getVersion(id)),
      log: [...s.log.readSince({ after: 0 })].map((e) => [e.cursor, e.type, e.id, e.timestamp]),
    })
    const a = snapshot(nodes[0]!.store)
    expect(a.records.length).toBeGreaterThan(0)
    expect(snapshot(nodes[1]!.store)).toEqual(a)
    expect(snapshot(nodes[2]!.store)).toEqual(a)
  }, 60_000)

  it('joins while JetStream has no meta leader yet (retrying), once it has one', async () => {
    const nats = await startNatsCluster({ size: 3 })
    cleanups.push(() => nats.stop())
    // two of three servers down: the one left answers no JetStream API request (no meta quorum)
    await Promise.all([nats.kill(1), nats.kill(2)])
    // the product's default write bound: the servers that rejoin elect the stream's leader again, which
    // took over 3 s under a loaded CI run (the write is delayed, not refused, within that bound)
    const joining = node([nats.urls[0]!], 'a', undefined, 3, 10_000)
    let joined = false
    void joining.then(() => (joined = true)).catch(() => {})
    // longer than one JetStream API request's timeout (5 s): the join outlives failed requests
    await new Promise((r) => setTimeout(r, 6000))
    expect(joined).toBe(false)
    await Promise.all([nats.restart(1), nats.restart(2)])
    const a = await joining
    await a.store.table('Dog').put('1', { v: 1 })
    expect(a.store.replicatedPosition).toBe(1)
  }, 60_000)

  it('catches up a node that was closed while others wrote, from its stored position', async () => {
    const nats = await startNatsCluster({ size: 1 })
    cleanups.push(() => nats.stop())
    const a = await node(nats.urls, 'a', undefined, 1)
    const b = await node(nats.urls, 'b', undefined, 1)
    await a.store.table('Dog').put('1', { v: 1 })
    await expect.poll(() => b.store.table('Dog').get('1')).toEqual({ v: 1 })
    await b.close()
    for (let i = 2; i <= 50; i++) await a.store.table('Dog').put(String(i), { v: i })
    const again = await node(nats.urls, 'b', b.path, 1)
    expect(again.cluster.state).toBe('ready')
    expect(again.store.replicatedPosition).toBe(50)
    expect(again.store.table('Dog').count()).toBe(50)
    expect(again.store.log.lastCursor).toBe(50_000)
  }, 60_000)
})
