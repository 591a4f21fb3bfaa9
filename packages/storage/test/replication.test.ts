import { describe, expect, it, vi } from 'vitest'
import { type ChangeEvent, ConflictError, type Replicator } from '../src/index.js'
import { useStores } from './helpers.js'
import { localStream, memoryStream } from './memory-stream.js'

describe('replicated stores', () => {
  const open = useStores()

  async function pair() {
    const stream = memoryStream()
    const a = (await open({ nodeId: 1, replicator: stream.replicator })).store
    const b = (await open({ nodeId: 2, replicator: stream.replicator })).store
    stream.attach(a)
    stream.attach(b)
    return { stream, a, b }
  }

  it('applies a write on every node with the same version and cursor position × 1000 + i', async () => {
    const { a, b } = await pair()
    const seen: ChangeEvent[] = []
    b.onChange((e) => seen.push(e))
    const event = await a.table('Dog').put('1', { name: 'Rex' })
    expect(event.cursor).toBe(1000)
    const [e1, e2] = await a.transaction((txn) => {
      txn.put(a.table('Dog'), '2', { name: 'Fido' })
      txn.patch(a.table('Dog'), '1', { age: 3 })
    })
    expect([e1!.cursor, e2!.cursor]).toEqual([2000, 2001])
    expect(e2!.value).toEqual({ name: 'Rex', age: 3 })
    await expect.poll(() => b.replicatedPosition).toBe(2)
    expect(b.table('Dog').get('1')).toEqual({ name: 'Rex', age: 3 })
    expect(b.table('Dog').getEntry('1')!.version).toBe(e2!.timestamp)
    expect(b.table('Dog').getVersion('1')).toEqual(a.table('Dog').getVersion('1'))
    expect(seen.map((e) => [e.type, e.id, e.cursor, e.nodeId])).toEqual([
      ['put', '1', 1000, 1],
      ['put', '2', 2000, 1],
      ['patch', '1', 2001, 1],
    ])
    expect(seen[2]!.patch).toEqual({ age: 3 })
    expect([...b.log.readSince({ after: 0 })].map((e) => e.cursor)).toEqual([1000, 2000, 2001])
  })

  it('converges on the latest timestamp whatever the stream order; a stale write is skipped and logs nothing', async () => {
    const { stream, a, b } = await pair()
    stream.hold()
    const older = a.table('Dog').put('x', { from: 'a' })
    const newer = b.table('Dog').put('x', { from: 'b' })
    // the newer write reaches the stream first: the older one arrives stale everywhere
    stream.release([1, 0])
    const [eOld, eNew] = await Promise.all([older, newer])
    // both clocks may stamp the same millisecond: then the higher nodeId (b) wins the tie
    expect(eOld.timestamp).toBeLessThanOrEqual(eNew.timestamp)
    for (const s of [a, b]) {
      await expect.poll(() => s.replicatedPosition).toBe(2)
      expect(s.table('Dog').get('x')).toEqual({ from: 'b' })
      expect(s.table('Dog').getEntry('x')!.version).toBe(eNew.timestamp)
      expect([...s.log.readSince({ after: 0 })].map((e) => e.cursor)).toEqual([1000])
    }
    // a delete of a newer timestamp wins over both
    await a.table('Dog').delete('x')
    await expect.poll(() => b.table('Dog').get('x')).toBeUndefined()
    expect(b.table('Dog').getVersion('x')!.deleted).toBe(true)
  })

  it('checks ifVersion in stream order: the same verdict on every node', async () => {
    const { stream, a, b } = await pair()
    const first = await a.table('Dog').put('c', { n: 0 })
    stream.hold()
    const fromA = a.table('Dog').put('c', { n: 'a' }, { ifVersion: first.timestamp })
    const fromB = b.table('Dog').put('c', { n: 'b' }, { ifVersion: first.timestamp })
    stream.release([1, 0])
    await expect(fromA).rejects.toBeInstanceOf(ConflictError)
    expect((await fromB).value).toEqual({ n: 'b' })
    await expect.poll(() => a.replicatedPosition).toBe(3)
    expect(a.table('Dog').get('c')).toEqual({ n: 'b' })
    expect(b.table('Dog').get('c')).toEqual({ n: 'b' })
  })

  it("gives two nodes' writes in the same millisecond different versions, so ifVersion names one write", async () => {
    // both clocks read the same wall time: before lanes, both writes got the same timestamp, the tie went to
    // the higher node id, and a writer holding the first write's version overwrote the second unseen
    const now = 1_800_000_000_000_000
    const stream = memoryStream()
    const a = (await open({ nodeId: 1, replicator: stream.replicator, wallClock: () => now })).store
    const b = (await open({ nodeId: 2, replicator: stream.replicator, wallClock: () => now })).store
    stream.attach(a)
    stream.attach(b)
    stream.hold()
    const fromA = a.table('Dog').put('t', { n: 'a' })
    const fromB = b.table('Dog').put('t', { n: 'b' })
    stream.release([0, 1])
    const [read, replaced] = await Promise.all([fromA, fromB])
    expect(read.timestamp).not.toBe(replaced.timestamp)
    await expect.poll(() => a.replicatedPosition).toBe(2)
    expect(a.table('Dog').get('t')).toEqual({ n: 'b' })
    // a client that read a's write and writes back on its version must be told the record changed
    await expect(
      a.table('Dog').put('t', { n: 'stale' }, { ifVersion: read.timestamp }),
    ).rejects.toBeInstanceOf(ConflictError)
    await expect.poll(() => b.replicatedPosition).toBe(3)
    expect(b.table('Dog').get('t')).toEqual({ n: 'b' })
  })

  it('keeps the applied position across a reopen, ignores duplicates, and commits local transactions alone', async () => {
    const stream = memoryStream()
    const opened = await open({ nodeId: 3, replicator: stream.replicator })
    stream.attach(opened.store)
    await opened.store.table('Dog').put('1', { v: 1 })
    // a table the replicator keeps local, written with a replicated one: applied on the origin only
    await opened.store.transaction((txn) => {
      txn.put(opened.store.table('Dog'), '2', { v: 2 })
      txn.put(opened.store.table('local-ids', { log: false }), 'k', 1)
    })
    const reopened = await opened.reopen()
    expect(reopened.replicatedPosition).toBe(2)
    expect(reopened.table('local-ids', { log: false }).get('k')).toBe(1)
    await reopened.applyReplicated(stream.entries[0]!.data, 1)
    expect(reopened.log.lastCursor).toBe(2000)
    await reopened.transaction((txn) => txn.put(reopened.table('Dog'), '3', { v: 3 }), { local: true })
    expect(reopened.table('Dog').get('3')).toEqual({ v: 3 })
    expect(stream.entries).toHaveLength(2)

    // another node applies the same stream: the origin-only write is not there
    const other = (await open({ nodeId: 4, replicator: stream.replicator })).store
    stream.attach(other)
    await expect.poll(() => other.replicatedPosition).toBe(2)
    expect(other.table('Dog').get('2')).toEqual({ v: 2 })
    expect(other.table('local-ids', { log: false }).get('k')).toBeUndefined()
  })

  it('resolves writers at submit when the replicator says not to wait, except conditional ones', async () => {
    const stream = memoryStream()
    const store = (
      await open({
        nodeId: 5,
        replicator: {
          ...stream.replicator,
          submit: async (t) => {
            await stream.replicator.submit(t)
            return { wait: false }
          },
        },
      })
    ).store
    stream.hold()
    const event = await store.table('Dog').put('1', { v: 1 })
    expect(event.timestamp).toBeGreaterThan(0)
    expect(store.table('Dog').get('1')).toBeUndefined() // in the order, not applied here yet
    let settled = false
    const conditional = store
      .table('Dog')
      .put('1', { v: 2 }, { ifVersion: event.timestamp })
      .finally(() => {
        settled = true
      })
    await new Promise((r) => setImmediate(r))
    expect(settled).toBe(false)
    stream.attach(store)
    stream.release()
    expect((await conditional).value).toEqual({ v: 2 })
    expect(store.table('Dog').get('1')).toEqual({ v: 2 })
  })

  it('fails a writer whose transaction is not applied within applyWithinMs (outcome unknown); it may apply later', async () => {
    const stream = memoryStream()
    const store = (
      await open({
        nodeId: 6,
        replicator: {
          ...stream.replicator,
          submit: async (t) => {
            await stream.replicator.submit(t)
            return { wait: true, applyWithinMs: 50 }
          },
        },
      })
    ).store
    stream.hold()
    const started = Date.now()
    const error = await store
      .table('Dog')
      .put('1', { v: 1 })
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect(error).toMatchObject({ code: 'STORAGE_UNAVAILABLE' })
    expect(Date.now() - started).toBeLessThan(2000)
    // the transaction was in the order: it applies when it comes back, like another node's write
    stream.attach(store)
    stream.release()
    await expect.poll(() => store.table('Dog').get('1')).toEqual({ v: 1 })
    // a write applied in time resolves as before, and its bound does not fire later
    const event = await store.table('Dog').put('2', { v: 2 })
    expect(event.value).toEqual({ v: 2 })
  })

  it('applies a transaction handed over as a plain Uint8Array (not a Buffer), as a NATS direct read gives it', async () => {
    const stream = memoryStream()
    const a = (await open({ nodeId: 1, replicator: stream.replicator })).store
    const b = (await open({ nodeId: 2, replicator: stream.replicator })).store
    stream.attach(a)
    await a.table('Dog').put('1', { name: 'Rex' })
    await b.applyReplicated(Uint8Array.from(stream.entries[0]!.data), 1)
    expect(b.table('Dog').get('1')).toEqual({ name: 'Rex' })
  })

  it('fails the writers when the replicator refuses, and changes nothing', async () => {
    const refusing: Replicator = {
      replicates: () => true,
      submit: async () => {
        throw Object.assign(new Error('no quorum'), { code: 'STORAGE_UNAVAILABLE' })
      },
    }
    const { store } = await open({ replicator: refusing })
    await expect(store.table('Dog').put('1', { v: 1 })).rejects.toThrow('no quorum')
    expect(store.table('Dog').get('1')).toBeUndefined()
    expect(store.replicatedPosition).toBe(0)
  })
})

describe('replicated stores committing locally (ack: local)', () => {
  const open = useStores()

  it('commits and resolves before the stream has the write; its return changes nothing; others apply it by timestamp', async () => {
    const stream = localStream()
    const a = (await open({ nodeId: 1, replicator: stream.replicator })).store
    const b = (await open({ nodeId: 2, replicator: stream.replicator })).store
    stream.attach(a)
    stream.attach(b)
    const events: ChangeEvent[] = []
    a.onChange((e) => events.push(e))
    const put = await a.table('Dog').put('1', { v: 1 })
    expect(put.cursor).toBeGreaterThan(0)
    expect(a.table('Dog').get('1')).toEqual({ v: 1 })
    expect(stream.told()).toBe(1)
    expect(a.outbox!.size).toBe(1)
    expect(b.table('Dog').get('1')).toBeUndefined()
    // a conditional write is checked here, at once
    await expect(a.table('Dog').put('1', { v: 9 }, { ifVersion: 5 })).rejects.toBeInstanceOf(ConflictError)
    await a.table('Dog').put('1', { v: 2 }, { ifVersion: put.timestamp })
    expect(await stream.publish(a)).toBe(2)
    await vi.waitFor(() => expect(b.table('Dog').get('1')).toEqual({ v: 2 }))
    await vi.waitFor(() => expect(a.replicatedPosition).toBe(2))
    expect(a.outbox!.size).toBe(0)
    expect(events.map((e) => e.value)).toEqual([{ v: 1 }, { v: 2 }]) // nothing again from the stream
    expect(b.table('Dog').getVersion('1')).toEqual(a.table('Dog').getVersion('1'))
  })

  it('keeps the outbox across a reopen, in commit order, and refuses a write larger than the replicator carries', async () => {
    const stream = localStream()
    const opened = await open({ nodeId: 1, replicator: stream.replicator })
    for (let i = 0; i < 5; i++) await opened.store.table('Dog').put(String(i), { i })
    await expect(opened.store.table('Dog').put('big', { s: 'x'.repeat(20_000) })).rejects.toMatchObject({
      code: 'STORAGE_INVALID_VALUE',
    })
    const reopened = await opened.reopen()
    const entries = reopened.outbox!.read(10)
    expect(entries.map((e) => e.key)).toEqual([1, 2, 3, 4, 5])
    expect(entries.map((e) => e.writes[0]!.id)).toEqual(['0', '1', '2', '3', '4'])
    expect(reopened.table('Dog').get('big')).toBeUndefined()
    expect(reopened.outbox!.lastKey).toBe(5)
  })

  it("refuses a write before it commits when the replicator's refusal says so (a full outbox)", async () => {
    const stream = localStream()
    let full: Error | undefined
    const replicator: Replicator = { ...stream.replicator, refusal: () => full }
    const { store } = await open({ nodeId: 1, replicator })
    await store.table('Dog').put('1', { v: 1 })
    full = Object.assign(new Error('the outbox is full'), { code: 'STORAGE_UNAVAILABLE' })
    await expect(store.table('Dog').put('2', { v: 2 })).rejects.toBe(full)
    expect(store.table('Dog').get('2')).toBeUndefined()
    expect(store.outbox!.size).toBe(1)
    expect(store.outbox!.lastKey).toBe(1)
    full = undefined
    await store.table('Dog').put('2', { v: 2 })
    expect(store.outbox!.lastKey).toBe(2)
  })
})
