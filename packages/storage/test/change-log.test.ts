import { describe, expect, it, vi } from 'vitest'
import {
  type ChangeEvent,
  LogTruncatedError,
  openStore,
  StoreClosedError,
  VersionMismatchError,
} from '../src/index.js'
import { useStores } from './helpers.js'

describe('change feed', () => {
  const open = useStores()

  it("hands a write's attachment to its live event only: never to the log", async () => {
    const { store } = await open()
    const dogs = store.table('Dog')
    const live: unknown[] = []
    store.onChange((e) => live.push(e.attachment))
    const bytes = { payload: 'as published' }
    const put = await dogs.put('a', { n: 1 }, { attachment: bytes })
    await dogs.message('a', 'hi', { attachment: 'm' })
    await store.transaction((txn) => txn.put(dogs, 'b', 2, { attachment: 'txn' }))
    await dogs.put('c', 3)
    expect(put!.attachment).toBe(bytes)
    expect(live).toEqual([bytes, 'm', 'txn', undefined])
    expect([...store.log.readSince()].map((e) => e.attachment)).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ])
  })

  it('calls listeners after commit, in commit order, filtered by table, id and prefix', async () => {
    const { store } = await open()
    const dogs = store.table('Dog')
    const cats = store.table('Cat')
    const all: number[] = []
    const byTable: string[] = []
    const byId: string[] = []
    const byPrefix: string[] = []
    store.onChange((e) => {
      // after commit: the event is already in the log that readers see
      expect(e.cursor).toBeLessThanOrEqual(store.log.lastCursor)
      expect([...store.log.readSince({ after: e.cursor - 1, limit: 1 })][0]).toMatchObject({ id: e.id })
      all.push(e.cursor)
    })
    store.onChange((e) => byTable.push(String(e.id)), { table: 'Dog' })
    store.onChange((e) => byId.push(`${e.type}:${String(e.id)}`), { table: 'Dog', id: 'a/1' })
    store.onChange((e) => byPrefix.push(String(e.id)), { table: 'Dog', prefix: 'a/' })
    const writes = [
      dogs.put('a/1', 1),
      cats.put('a/1', 1),
      dogs.put('a/2', 2),
      dogs.put('b', 3),
      dogs.message('a/1', 'hi'),
      dogs.delete('a/1'),
    ]
    await Promise.all(writes)
    await store.transaction((txn) => {
      txn.put(dogs, 'a/3', 1)
      txn.put(cats, 'c', 2)
    })
    expect(all).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
    expect(byTable).toEqual(['a/1', 'a/2', 'b', 'a/1', 'a/1', 'a/3'])
    expect(byId).toEqual(['put:a/1', 'message:a/1', 'delete:a/1'])
    expect(byPrefix).toEqual(['a/1', 'a/2', 'a/1', 'a/1', 'a/3'])
  })

  it('stops calling a listener after unsubscribe, and keeps going when a listener throws', async () => {
    const errors: unknown[] = []
    const { store } = await open({ onError: (e) => errors.push(e) })
    const t = store.table('T')
    const seen: ChangeEvent[] = []
    const listener = (e: ChangeEvent) => seen.push(e)
    const off1 = store.onChange(listener, { table: 'T', id: 'x' })
    const off2 = store.onChange(listener, { table: 'T', id: 'x' })
    store.onChange(() => {
      throw new Error('boom')
    })
    await t.put('x', 1)
    expect(seen).toHaveLength(2)
    off1()
    off1()
    await t.put('x', 2)
    expect(seen).toHaveLength(3)
    off2()
    await t.put('x', 3)
    expect(seen).toHaveLength(3)
    expect(errors).toHaveLength(3)
  })
})

describe('change log', () => {
  const open = useStores()

  it('reads events after a cursor, by table, with a limit, and never past lastCursor', async () => {
    const { store } = await open()
    const a = store.table('A')
    const b = store.table('B')
    for (let i = 0; i < 5; i++) {
      await a.put(i, i, { user: 'u' })
      await b.put(i, i)
    }
    expect(store.log.firstCursor).toBe(1)
    expect(store.log.lastCursor).toBe(10)
    const all = [...store.log.readSince()]
    expect(all.map((e) => e.cursor)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    expect(all[0]).toMatchObject({
      type: 'put',
      table: 'A',
      id: 0,
      value: 0,
      user: 'u',
      nodeId: store.clock.nodeId,
    })
    expect([...store.log.readSince({ after: 6 })].map((e) => e.cursor)).toEqual([7, 8, 9, 10])
    expect([...store.log.readSince({ after: 2, tables: ['B'], limit: 2 })].map((e) => e.cursor)).toEqual([
      4, 6,
    ])
    // a write in flight is not visible to readSince until its promise (and the feed) has it
    const pending = a.put('late', 1)
    expect([...store.log.readSince({ after: 10 })]).toEqual([])
    await pending
    expect([...store.log.readSince({ after: 10 })].map((e) => e.cursor)).toEqual([11])
  })

  it('keeps cursors and the clock monotonic across reopen', async () => {
    const { store, reopen } = await open()
    const last = await store.table('A').put('x', 1)
    const again = await reopen()
    expect(again.log.lastCursor).toBe(last.cursor)
    const next = await again.table('A').put('y', 1)
    expect(next.cursor).toBe(last.cursor + 1)
    expect(next.timestamp).toBeGreaterThan(last.timestamp)
  })

  it('compacts by count and tells a reader that fell behind', async () => {
    const { store } = await open({ retention: { maxEvents: 3 } })
    const t = store.table('A')
    for (let i = 0; i < 8; i++) await t.put(i, i)
    expect(await store.log.compact()).toBe(5)
    expect(store.log.firstCursor).toBe(6)
    expect(store.log.lastCursor).toBe(8)
    expect([...store.log.readSince({ after: 5 })].map((e) => e.cursor)).toEqual([6, 7, 8])
    expect(() => store.log.readSince({ after: 4 })).toThrow(LogTruncatedError)
    expect(() => store.log.readSince({ after: 0 })).toThrow(
      expect.objectContaining({ code: 'STORAGE_LOG_TRUNCATED' }),
    )
    expect([...store.log.readSince()].map((e) => e.cursor)).toEqual([6, 7, 8])
    expect(await store.log.compact()).toBe(0)
  })

  it('compacts by age, keeps the truncation point across reopen, and drops expired tombstones', async () => {
    let now = 1_700_000_000_000_000
    const wallClock = () => now
    const { store, reopen } = await open({ wallClock, retention: { maxAgeMs: 1000 } })
    const t = store.table('A')
    await t.put('old', 1)
    await t.delete('old')
    now += 2_000_000 // 2 s later
    await t.put('new', 2)
    expect(t.getVersion('old')?.deleted).toBe(true)
    expect(await store.log.compact()).toBe(2)
    expect([...store.log.readSince()].map((e) => e.id)).toEqual(['new'])
    expect(t.getVersion('old')).toBeUndefined()
    const again = await reopen()
    expect(() => again.log.readSince({ after: 1 })).toThrow(LogTruncatedError)
    expect(again.log.firstCursor).toBe(3)
    expect(again.table('A').get('new')).toBe(2)
  })

  it('compaction leaves a tombstone that a later put replaced', async () => {
    let now = 1_700_000_000_000_000
    const { store } = await open({ wallClock: () => now, retention: { tombstoneMaxAgeMs: 1000 } })
    const t = store.table('A')
    await t.put('x', 1)
    await t.delete('x')
    await t.put('x', 2)
    now += 2_000_000
    await store.log.compact()
    expect(t.get('x')).toBe(2)
    expect([...store.log.readSince()].length).toBe(3)
  })

  it('runs compaction periodically on an unref-ed timer cleared on close', async () => {
    const { store } = await open({ retention: { maxEvents: 1 }, compactionIntervalMs: 20 })
    const t = store.table('A')
    for (let i = 0; i < 5; i++) await t.put(i, i)
    // nothing here calls compact(): only the timer can move the first cursor
    await vi.waitFor(() => expect(store.log.firstCursor).toBe(5), { timeout: 3000 })
  })
})

describe('hybrid clock', () => {
  const open = useStores()

  it("stays strictly increasing when the wall clock steps back, in its node's lane", async () => {
    let now = 2_000_000_000_000_000
    const { store } = await open({ nodeId: 7, wallClock: () => now })
    const a = store.clock.now()
    expect(a).toBe(now + 7) // lane 7 of the millisecond
    now -= 60_000_000
    const b = store.clock.now()
    const c = store.clock.now()
    expect(b).toBe(a + 1000)
    expect(c).toBe(a + 2000)
    // a timestamp from another node's lane: the next one here is after it, in lane 7 again
    store.clock.observe(a + 2500)
    expect(store.clock.now()).toBe(a + 3000)
    now = a + 5993
    expect(store.clock.now()).toBe(a + 6000)
  })

  it('never issues a timestamp another node issues in the same millisecond', async () => {
    const now = 2_000_000_000_000_000
    const one = (await open({ nodeId: 1, wallClock: () => now })).store
    const two = (await open({ nodeId: 1002, wallClock: () => now })).store
    const three = (await open({ nodeId: 3, wallClock: () => now })).store
    const issued = [one, two, three].flatMap((s) => [s.clock.now(), s.clock.now(), s.clock.now()])
    // three nodes in lanes 1, 2 (1002 modulo 1000) and 3, all stamping in the same millisecond
    expect(new Set(issued).size).toBe(issued.length)
    expect(issued.map((t) => t % 1000)).toEqual([1, 1, 1, 2, 2, 2, 3, 3, 3])
  })

  it('keeps the node id it was given, or the one it stored', async () => {
    const { store, reopen } = await open({ nodeId: 42 })
    expect(store.clock.nodeId).toBe(42)
    const again = await reopen({ nodeId: undefined })
    expect(again.clock.nodeId).toBe(42)
  })
})

describe('store lifecycle', () => {
  const open = useStores()

  it('refuses to open a store written in another format version, saying so', async () => {
    const { store, path } = await open()
    await store.close()
    const { open: lmdbOpen } = await import('lmdb')
    const env = lmdbOpen({ path, maxDbs: 10 })
    await env.openDB({ name: '__meta' }).put('format', 999)
    await env.close()
    const attempt = openStore({ path })
    await expect(attempt).rejects.toBeInstanceOf(VersionMismatchError)
    await expect(attempt).rejects.toMatchObject({
      code: 'STORAGE_VERSION_MISMATCH',
      message: expect.stringMatching(/format version 999.*reads format version 2/),
    })
  })

  it('finishes queued writes on close, then rejects writes and reads with STORAGE_CLOSED', async () => {
    const { store } = await open()
    const t = store.table('A')
    const pending = Array.from({ length: 50 }, (_, i) => t.put(i, i))
    await store.close()
    expect((await Promise.all(pending)).length).toBe(50)
    await expect(t.put('x', 1)).rejects.toBeInstanceOf(StoreClosedError)
    await expect(store.transaction(() => {})).rejects.toMatchObject({ code: 'STORAGE_CLOSED' })
    expect(() => t.get(1)).toThrow(StoreClosedError)
    await store.close()
  })
})
