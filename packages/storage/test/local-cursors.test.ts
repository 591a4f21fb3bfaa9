import { open as openLmdb } from 'lmdb'
import { describe, expect, it } from 'vitest'
import type { ChangeEvent, Store } from '../src/index.js'
import { useStores } from './helpers.js'
import { localStream } from './memory-stream.js'

/** What a read returns: `[id, cursor]` per event. */
const ids = (events: Iterable<ChangeEvent>) => [...events].map((e) => [e.id, e.cursor])

describe('cursors of nodes that commit ahead of the stream (ack: local)', () => {
  const open = useStores()

  /** Nodes 1 and 3 commit locally, node 2 too; every one applies the stream. */
  async function cluster(options: Parameters<typeof localStream>[0] = {}) {
    const stream = localStream({ maxBytes: undefined, ...options })
    const nodes: Store[] = []
    for (const nodeId of [1, 2, 3]) {
      const { store } = await open({ nodeId, replicator: stream.replicator })
      stream.attach(store)
      nodes.push(store)
    }
    const [a, b, c] = nodes as [Store, Store, Store]
    /** Publishes a node's outbox and waits until every node applied it. */
    const publish = async (store: Store) => {
      await stream.publish(store)
      const end = stream.entries.length
      await expect.poll(() => nodes.map((n) => n.replicatedPosition)).toEqual([end, end, end])
    }
    return { stream, a, b, c, publish }
  }

  it('says which node issued its cursors, and hands out provisional cursors below the next position', async () => {
    const { a, c, publish } = await cluster()
    expect(a.log.issuer).toBe(1)
    const x1 = await a.table('Dog').put('x1', {}) // provisional on a: slot 1 of position 0
    const y1 = await c.table('Dog').put('y1', {})
    expect([x1.cursor, y1.cursor]).toEqual([1, 1])
    await publish(c) // y1 at position 1: cursor 1000 everywhere
    expect(ids(a.log.readSince({ after: 0 }))).toEqual([
      ['x1', 1],
      ['y1', 1000],
    ])
    await publish(a) // x1 at position 2
    const x2 = await a.table('Dog').put('x2', {})
    expect(x2.cursor).toBe(2000) // a's own slots after position 2 (the other nodes' 2000 is x1)
  })

  it("reads after another node's cursor: neither what it delivered ahead of the stream, nor less than it had not", async () => {
    const { a, b, c, publish } = await cluster()
    await a.table('Dog').put('x1', {})
    await c.table('Dog').put('y1', {})
    await publish(c) // y1 at 1000
    await publish(a) // x1 at 2000 on b and c, 1 on a
    // a delivered x1 (1) and y1 (1000): the cursor 1000 of a, read on b, has nothing after it
    expect(ids(b.log.readSince({ after: 1000, issuer: 1 }))).toEqual([])
    // without the issuer it is a plain cursor of b's: x1 again (what the issuer fixes)
    expect(ids(b.log.readSince({ after: 1000 }))).toEqual([['x1', 2000]])
    // the live event of x1 on b says where a had put it (a reader resumed after a's cursor skips it)
    expect(b.log.originOf(2000)).toEqual({ node: 1, cursor: 1 })
    expect(b.log.originOf(1000)).toEqual({ node: 3, cursor: 1 })
    expect(a.log.originOf(1000)).toEqual({ node: 3, cursor: 1 })
    expect(a.log.originOf(2000)).toBeUndefined() // its own
    // b delivered y1 (1000) only: read on a with b's cursor, a's own x1 comes (the stream put it later)
    expect(ids(a.log.readSince({ after: 1000, issuer: 2 }))).toEqual([['x1', 1]])
    expect(ids(a.log.readSince({ after: 1000, issuer: 1 }))).toEqual([])
    // a's own write not yet in the stream, numbered 2000 on a; b's 2000 is x1
    await a.table('Dog').put('x2', {})
    expect(ids(a.log.readSince({ after: 2000, issuer: 2 }))).toEqual([['x2', 2000]])
    expect(ids(a.log.readSince({ after: 2000, issuer: 3, tables: ['Cat'] }))).toEqual([])
    await c.table('Dog').put('y2', {}) // provisional 2001 on c (its 2000 is x1)
    await publish(a) // x2 at position 3 (3000 on b and c)
    // a's cursor 2000 covers x2: b leaves it out; c too, and keeps its own y2 (a never had it)
    expect(ids(b.log.readSince({ after: 2000, issuer: 1 }))).toEqual([])
    expect(ids(c.log.readSince({ after: 2000, issuer: 1 }))).toEqual([['y2', 2001]])
    await publish(c) // y2 at position 4
    // b's cursor 3000 (x1, y1, x2) on c: y2 is after it in the stream, and c numbered it 2001
    expect(ids(c.log.readSince({ after: 3000, issuer: 2 }))).toEqual([['y2', 2001]])
    // c's cursor 2001 (y1, x1, y2; not x2) on b: x2, not y2
    expect(ids(b.log.readSince({ after: 2001, issuer: 3 }))).toEqual([['x2', 3000]])
    // c's cursor 1 (y1 only) on b: the rest, without y1
    expect(ids(b.log.readSince({ after: 1, issuer: 3 }))).toEqual([
      ['x1', 2000],
      ['x2', 3000],
      ['y2', 4000],
    ])
    expect(ids(b.log.readSince({ after: 1, issuer: 3, limit: 1 }))).toEqual([['x1', 2000]])
  })

  it('keeps a transaction of several events together: its events count from its first cursor', async () => {
    const { a, b, publish } = await cluster()
    const events = await a.transaction((txn) => {
      for (const id of ['t0', 't1', 't2']) txn.put(a.table('Dog'), id, {})
    })
    expect(events.map((e) => e.cursor)).toEqual([1, 2, 3])
    await publish(a)
    // a delivered up to t1 (cursor 2): b leaves out t0 and t1 (1000, 1001), not t2
    expect(ids(b.log.readSince({ after: 2, issuer: 1 }))).toEqual([['t2', 1002]])
  })

  it('lets an own write wait when the slots up to the next position are used up, until one is applied', async () => {
    const { a, b, publish } = await cluster()
    await a.transaction((txn) => {
      for (let i = 0; i < 999; i++) txn.put(a.table('Dog'), `f${i}`, {})
    })
    let settled = false
    const waiting = a
      .table('Dog')
      .put('next', {})
      .finally(() => (settled = true))
    // a node-local commit (unlogged, as all of them are) goes by meanwhile: the waiting write did not commit
    await a.transaction((txn) => txn.put(a.table('local-notes', { log: false }), 'n', {}), { local: true })
    expect(settled).toBe(false)
    expect(a.table('Dog').get('next')).toBeUndefined()
    await b.table('Dog').put('other', {})
    await publish(b) // position 1: b's write at 1000 on a too, then a's waiting write after it
    const next = await waiting
    expect(next.cursor).toBe(1001)
    expect(ids(a.log.readSince({ after: 999 }))).toEqual([
      ['other', 1000],
      ['next', 1001],
    ])
  })

  it('refuses an own write as unavailable when no position comes within positionWaitMs', async () => {
    const { a } = await cluster({ positionWaitMs: 200 })
    await a.transaction((txn) => {
      for (let i = 0; i < 999; i++) txn.put(a.table('Dog'), `f${i}`, {})
    })
    const first = a.table('Dog').put('w1', {})
    const second = a.table('Dog').put('w2', {}) // behind it, in commit order
    await expect(first).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' })
    await expect(second).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' })
    expect(a.table('Dog').get('w1')).toBeUndefined()
    expect(a.outbox!.size).toBe(1)
  })

  it('keeps the index across a reopen and prunes it with the log', async () => {
    const stream = localStream({ maxBytes: undefined })
    const opened = await open({ nodeId: 2, replicator: stream.replicator, retention: { maxEvents: 1 } })
    const { store: origin } = await open({ nodeId: 1, replicator: stream.replicator })
    stream.attach(opened.store)
    stream.attach(origin)
    for (const id of ['x1', 'x2', 'x3']) {
      await origin.table('Dog').put(id, {})
      await stream.publish(origin)
    }
    await expect.poll(() => opened.store.replicatedPosition).toBe(3)
    const b = await opened.reopen()
    // the origin numbered x1..x3 as 1, 1000, 2000 (after applying each); it delivered up to x2
    expect(ids(b.log.readSince({ after: 1000, issuer: 1 }))).toEqual([['x3', 3000]])
    expect(await b.log.compact()).toBe(2) // the log keeps x3 only
    await b.close()
    const env = openLmdb({ path: opened.path })
    const index = env.openDB({ name: '__cursorIndex' })
    expect([...index.getKeys()]).toEqual([[1, 2000]])
    await env.close()
  })
})
