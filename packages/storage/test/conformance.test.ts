import { describe, expect, it } from 'vitest'
import {
  type ChangeEvent,
  ConflictError,
  InvalidKeyError,
  InvalidValueError,
  KeyTooLongError,
  StaleWriteError,
} from '../src/index.js'
import { useStores } from './helpers.js'

// One conformance suite under an option matrix: durable and noSync commits, logged and unlogged tables.
const matrix = [
  { name: 'synced, logged table', noSync: false, log: true },
  { name: 'noSync, logged table', noSync: true, log: true },
  { name: 'synced, unlogged table', noSync: false, log: false },
]

describe.each(matrix)('store conformance ($name)', ({ noSync, log }) => {
  const open = useStores()
  const setup = async () => {
    const opened = await open({ noSync })
    return { ...opened, table: opened.store.table<any>('Dog', { log }) }
  }

  it('round-trips structured values, binary and dates for string, number and array keys', async () => {
    const { table } = await setup()
    const value = {
      name: 'Rex',
      tags: ['a', 'b'],
      bytes: Buffer.from([0, 1, 255]),
      u8: new Uint8Array([7, 8]),
    }
    const when = new Date('2024-01-02T03:04:05.678Z')
    await table.put('rex', value)
    await table.put(42, when)
    await table.put(['kennel', 3], 'compound')
    const got = table.get('rex')
    expect(got).toEqual({ ...value, u8: Buffer.from([7, 8]) })
    expect(Buffer.isBuffer(got.bytes)).toBe(true)
    expect(got.u8).toBeInstanceOf(Uint8Array)
    expect(table.get(42)).toEqual(when)
    expect(table.get(42)).toBeInstanceOf(Date)
    expect(table.get(['kennel', 3])).toBe('compound')
    expect(table.get('missing')).toBeUndefined()
  })

  it('resolves each write with its event: strictly increasing timestamps and (logged) cursors', async () => {
    const { store, table } = await setup()
    const events = await Promise.all(Array.from({ length: 200 }, (_, i) => table.put(`k${i}`, { i })))
    for (let i = 1; i < events.length; i++) {
      expect(events[i]!.timestamp).toBeGreaterThan(events[i - 1]!.timestamp)
      if (log) expect(events[i]!.cursor).toBe(events[i - 1]!.cursor + 1)
    }
    expect(events[0]).toMatchObject({
      type: 'put',
      table: 'Dog',
      id: 'k0',
      value: { i: 0 },
      nodeId: store.clock.nodeId,
    })
    const entry = table.getEntry('k5')
    expect(entry).toEqual({ id: 'k5', value: { i: 5 }, version: events[5]!.timestamp })
    expect(store.log.lastCursor).toBe(log ? events[199]!.cursor : 0)
  })

  it('patches by shallow merge, creates on a missing record, removes undefined fields', async () => {
    const { table } = await setup()
    await table.put('a', { name: 'Rex', age: 2, owner: 'x' })
    const event = await table.patch('a', { age: 3, owner: undefined })
    expect(event).toMatchObject({ type: 'patch', value: { name: 'Rex', age: 3 }, patch: { age: 3 } })
    expect(table.get('a')).toEqual({ name: 'Rex', age: 3 })
    await table.patch('new', { x: 1 })
    expect(table.get('new')).toEqual({ x: 1 })
    await table.put('scalar', 5)
    await expect(table.patch('scalar', { x: 1 })).rejects.toBeInstanceOf(InvalidValueError)
    expect(table.get('scalar')).toBe(5)
  })

  it('deletes: get is undefined, a second delete resolves undefined, a timestamped delete stays a tombstone', async () => {
    const { table } = await setup()
    await table.put('a', 1)
    const event = await table.delete('a')
    expect(event).toMatchObject({ type: 'delete', id: 'a', value: undefined })
    expect(table.get('a')).toBeUndefined()
    expect(table.getEntry('a')).toBeUndefined()
    expect(await table.delete('a')).toBeUndefined()
    expect(table.count()).toBe(0)
    expect([...table.entries()]).toEqual([])
    if (log)
      expect(table.getVersion('a')).toEqual({
        version: event!.timestamp,
        nodeId: event!.nodeId,
        deleted: true,
      })
    else expect(table.getVersion('a')).toBeUndefined()
  })

  it('iterates ranges and prefixes in key order with limit, offset and reverse, skipping deleted records', async () => {
    const { table } = await setup()
    for (const id of ['a/1', 'a/2', 'a/3', 'ab', 'b/1', 'c']) await table.put(id, id)
    await table.put(['a/', 1], 'arr')
    await table.put(7, 'num')
    await table.delete('a/2')
    const ids = (r = {}) => [...table.entries(r)].map((e) => e.id)
    // ordered-binary: numbers first, then strings and arrays by bytes (an array's separator sorts low)
    expect(ids()).toEqual([7, ['a/', 1], 'a/1', 'a/3', 'ab', 'b/1', 'c'])
    expect(ids({ prefix: 'a/' })).toEqual([['a/', 1], 'a/1', 'a/3'])
    expect(ids({ prefix: 'a/', reverse: true })).toEqual(['a/3', 'a/1', ['a/', 1]])
    expect(ids({ start: 'a/3', end: 'c' })).toEqual(['a/3', 'ab', 'b/1'])
    expect(ids({ start: 'a/3', end: 'c', reverse: true })).toEqual(['b/1', 'ab', 'a/3'])
    expect(ids({ limit: 2, offset: 1 })).toEqual([['a/', 1], 'a/1'])
    expect(ids({ reverse: true, limit: 2 })).toEqual(['c', 'b/1'])
    expect(table.count()).toBe(7)
    expect(table.count({ prefix: 'a/' })).toBe(3)
    expect(table.count({ start: 'a', end: 'b' })).toBe(4)
  })

  it('applies a timestamped write only when newer (last writer wins, ties to the higher node id)', async () => {
    const { table } = await setup()
    await table.put('r', 'first', { timestamp: 1000, nodeId: 5 })
    await expect(table.put('r', 'older', { timestamp: 999, nodeId: 9 })).rejects.toBeInstanceOf(
      StaleWriteError,
    )
    await expect(table.put('r', 'tie-low', { timestamp: 1000, nodeId: 4 })).rejects.toMatchObject({
      code: 'STORAGE_STALE',
    })
    await table.put('r', 'tie-high', { timestamp: 1000, nodeId: 6 })
    expect(table.getEntry('r')).toEqual({ id: 'r', value: 'tie-high', version: 1000 })
    await table.delete('r', { timestamp: 2000, nodeId: 1 })
    // an older replicated put must not resurrect a record deleted later (logged tables keep tombstones)
    if (log)
      await expect(table.put('r', 'late', { timestamp: 1500, nodeId: 1 })).rejects.toBeInstanceOf(
        StaleWriteError,
      )
    // a local write after observing a remote timestamp is stamped later than it
    const local = await table.put('r2', 'x')
    expect(local.timestamp).toBeGreaterThan(2000)
  })

  it('applies an ifVersion write only when the stored version matches; 0 means create-only', async () => {
    const { table } = await setup()
    const created = await table.put('v', 1, { ifVersion: 0 })
    await expect(table.put('v', 2, { ifVersion: 0 })).rejects.toBeInstanceOf(ConflictError)
    await expect(table.put('v', 2, { ifVersion: created.timestamp + 1 })).rejects.toMatchObject({
      code: 'STORAGE_CONFLICT',
    })
    const updated = await table.put('v', 3, { ifVersion: created.timestamp })
    await table.patch('v', {} as any, { ifVersion: created.timestamp }).catch(() => undefined)
    expect(table.getEntry('v')).toEqual({ id: 'v', value: 3, version: updated.timestamp })
  })

  it('commits a transaction across tables atomically, and nothing of it when one write fails', async () => {
    const { store, table } = await setup()
    const other = store.table<any>('Owner', { log })
    const events = await store.transaction((txn) => {
      txn.put(table, 'a', { n: 1 })
      txn.patch(table, 'a', { m: 2 })
      txn.put(other, 'o', 'owner')
    })
    expect(events.map((e) => e.type)).toEqual(['put', 'patch', 'put'])
    expect(table.get('a')).toEqual({ n: 1, m: 2 })
    const before = store.log.lastCursor
    await expect(
      store.transaction((txn) => {
        txn.put(table, 'b', 1)
        txn.put(other, 'o', 'changed')
        txn.put(table, 'a', 'conflict', { ifVersion: 1 })
      }),
    ).rejects.toBeInstanceOf(ConflictError)
    expect(table.get('b')).toBeUndefined()
    expect(other.get('o')).toBe('owner')
    expect(store.log.lastCursor).toBe(before)
    // a later write still gets the next cursor: a failed transaction leaves no gap
    const next = await table.put('c', 1)
    if (log) expect(next.cursor).toBe(before + 1)
  })

  it('fails a write with a value or key that cannot be stored, with a typed error, changing nothing', async () => {
    const { store, table } = await setup()
    await table.put('keep', { ok: true })
    const cursor = store.log.lastCursor
    const bad: [unknown, unknown][] = [
      ['keep', { f: () => 1 }],
      ['keep', Symbol('s')],
      ['keep', { nested: { s: Symbol('s') } }],
      ['keep', undefined],
      ['keep', 2n ** 70n],
    ]
    for (const [id, value] of bad)
      await expect(table.put(id as string, value), String(value)).rejects.toBeInstanceOf(InvalidValueError)
    const circular: any = { a: 1 }
    circular.self = circular
    await expect(table.put('keep', circular)).rejects.toMatchObject({ code: 'STORAGE_INVALID_VALUE' })
    for (const id of ['x'.repeat(3000), '', Number.NaN, [{}], {}, null])
      await expect(table.put(id as any, 1)).rejects.toBeInstanceOf(InvalidKeyError)
    // past the LMDB key limit: its own error (and code), still an InvalidKeyError
    for (const id of ['x'.repeat(3000), ['a', 'é'.repeat(1000)]]) {
      const tooLong = table.put(id as any, 1)
      await expect(tooLong).rejects.toBeInstanceOf(KeyTooLongError)
      await expect(tooLong).rejects.toMatchObject({ code: 'STORAGE_KEY_TOO_LONG', maxBytes: 1900 })
    }
    expect(table.get('y'.repeat(3000))).toBeUndefined()
    expect(() => table.get({} as any)).toThrow(InvalidKeyError)
    await expect(table.message('keep', (() => 1) as any)).rejects.toBeInstanceOf(InvalidValueError)
    await expect(
      store.transaction((txn) => {
        txn.put(table, 'other', 1)
        txn.put(table, 'keep', Symbol('x'))
      }),
    ).rejects.toMatchObject({ code: 'STORAGE_INVALID_VALUE' })
    expect(table.get('keep')).toEqual({ ok: true })
    expect(table.get('other')).toBeUndefined()
    expect(store.log.lastCursor).toBe(cursor)
    expect([...store.log.readSince()].length).toBe(log ? 1 : 0)
  })

  it('delivers messages to the log and feed without touching the record (logged tables only)', async () => {
    const { store, table } = await setup()
    const seen: ChangeEvent[] = []
    store.onChange((e) => seen.push(e))
    await table.put('m', 'state')
    const event = await table.message('m', { hello: 1 }, { user: 'ann', meta: { qos: 1 } })
    expect(event).toMatchObject({ type: 'message', value: { hello: 1 }, user: 'ann', meta: { qos: 1 } })
    expect(table.get('m')).toBe('state')
    if (log) {
      expect(seen.map((e) => e.type)).toEqual(['put', 'message'])
      const logged = [...store.log.readSince()]
      expect(logged[1]).toEqual({ ...event, patch: undefined })
    } else {
      expect(seen).toEqual([])
      expect([...store.log.readSince()]).toEqual([])
    }
  })

  it('keeps every resolved write across close and reopen', async () => {
    const { table, reopen } = await setup()
    await Promise.all(Array.from({ length: 300 }, (_, i) => table.put(i, { i })))
    await table.delete(7)
    const reopened = await reopen()
    const again = reopened.table<any>('Dog', { log })
    expect(again.count()).toBe(299)
    expect(again.get(299)).toEqual({ i: 299 })
    expect(again.get(7)).toBeUndefined()
    expect(reopened.tableNames()).toEqual(['Dog'])
  })
})
