import { open as openEnv } from 'lmdb'
import { describe, expect, it } from 'vitest'
import type { ChangeEvent, Store } from '../src/index.js'
import { useStores } from './helpers.js'

// A put's value is stored once: its log entry refers to the record while that version is current, and
// the write that replaces the record gives the entry its value (record-format.ts, VALUE_IN_RECORD).

/** The raw log entries and records, read through a second handle on the same files. */
function rawDbs(store: Store) {
  const internal = store as unknown as { logDb: { getBinary(k: number): Buffer | undefined } }
  const env = (store as unknown as { env: { openDB(o: object): any } }).env
  return {
    entry: (cursor: number) => internal.logDb.getBinary(cursor),
    record: (table: string, id: string) => env.openDB({ name: `t/${table}`, encoding: 'binary' }).get(id),
  }
}

const VALUE = 'x'.repeat(200)
const contains = (bytes: Buffer | undefined, text: string) => bytes?.includes(text) === true
const logged = (store: Store, after = 0) =>
  [...store.log.readSince({ after })].map((e: ChangeEvent) => [e.type, e.id, e.value])

describe('log values kept once', () => {
  const open = useStores()

  it("keeps a put's value in its record only, and reads it back through the log", async () => {
    const { store } = await open()
    const dogs = store.table('Dog')
    const put = await dogs.put('a', { v: VALUE })
    const raw = rawDbs(store)
    expect(contains(raw.record('Dog', 'a'), VALUE)).toBe(true)
    expect(contains(raw.entry(put.cursor), VALUE)).toBe(false)
    expect(logged(store)).toEqual([['put', 'a', { v: VALUE }]])
  })

  it.each([false, true])(
    'gives an entry its value when a put, patch or delete replaces the record (previous: %s)',
    async (previous) => {
      const { store, reopen } = await open()
      const dogs = store.table<any>('Dog', { previous })
      const events = [
        await dogs.put('a', { v: `${VALUE}1` }),
        await dogs.put('a', { v: `${VALUE}2` }),
        await dogs.patch('a', { w: 1 }),
        await dogs.patch('a', { w: 2 }),
        await dogs.message('a', 'leaves the record'),
        await dogs.delete('a'),
        await dogs.put('a', { v: `${VALUE}3` }),
        await dogs.put('b', 'untouched'),
      ]
      const expected = [
        ['put', 'a', { v: `${VALUE}1` }],
        ['put', 'a', { v: `${VALUE}2` }],
        ['patch', 'a', { v: `${VALUE}2`, w: 1 }],
        ['patch', 'a', { v: `${VALUE}2`, w: 2 }],
        ['message', 'a', 'leaves the record'],
        ['delete', 'a', undefined],
        ['put', 'a', { v: `${VALUE}3` }],
        ['put', 'b', 'untouched'],
      ]
      expect(logged(store)).toEqual(expected)
      const raw = rawDbs(store)
      // the replaced versions' entries hold their values; the current one's does not
      expect(contains(raw.entry(events[0]!.cursor), `${VALUE}1`)).toBe(true)
      expect(contains(raw.entry(events[6]!.cursor), `${VALUE}3`)).toBe(false)
      const again = await reopen()
      expect(logged(again)).toEqual(expected)
    },
  )

  it('writes inline within a transaction, including two writes of one record', async () => {
    const { store } = await open()
    const dogs = store.table<any>('Dog')
    await dogs.put('a', { v: 0 })
    await store.transaction((txn) => {
      txn.put(dogs, 'a', { v: 1 })
      txn.put(dogs, 'a', { v: 2 })
      txn.patch(dogs, 'a', { w: 3 })
    })
    await dogs.put('a', { v: 4 })
    await store.transaction((txn) => txn.delete(dogs, 'a'))
    expect(logged(store)).toEqual([
      ['put', 'a', { v: 0 }],
      ['put', 'a', { v: 1 }],
      ['put', 'a', { v: 2 }],
      ['patch', 'a', { v: 2, w: 3 }],
      ['put', 'a', { v: 4 }],
      ['delete', 'a', undefined],
    ])
  })

  it('replaces a record in the same batch as the put it replaces', async () => {
    const { store } = await open()
    const dogs = store.table<any>('Dog')
    await Promise.all([
      dogs.put('a', 1),
      dogs.put('a', 2),
      dogs.patch('b', { n: 1 }),
      dogs.patch('b', { m: 2 }),
    ])
    expect(logged(store)).toEqual([
      ['put', 'a', 1],
      ['put', 'a', 2],
      ['patch', 'b', { n: 1 }],
      ['patch', 'b', { n: 1, m: 2 }],
    ])
  })

  it('hands a reader that started before the record was replaced the value of its version', async () => {
    const { store } = await open()
    const dogs = store.table<any>('Dog')
    await dogs.put('a', 1)
    await dogs.put('b', 1)
    const reader = store.log.readSince()[Symbol.iterator]()
    expect(reader.next().value).toMatchObject({ id: 'a', value: 1 })
    // the reader's snapshot still has b's entry referring to the record; the record is replaced now
    await dogs.put('b', 2)
    expect(reader.next().value).toMatchObject({ id: 'b', value: 1 })
    expect(logged(store)).toEqual([
      ['put', 'a', 1],
      ['put', 'b', 1],
      ['put', 'b', 2],
    ])
  })

  it('replaces a record whose entry retention dropped', async () => {
    const { store } = await open({ retention: { maxEvents: 1 } })
    const dogs = store.table<any>('Dog')
    await dogs.put('a', 1)
    await dogs.put('b', 1)
    expect(await store.log.compact()).toBe(1)
    await dogs.put('a', 2)
    await dogs.delete('b')
    expect(dogs.get('a')).toBe(2)
    expect(logged(store, store.log.firstCursor - 1)).toEqual([
      ['put', 'b', 1],
      ['put', 'a', 2],
      ['delete', 'b', undefined],
    ])
  })

  it('keeps the value when a logged table is reopened unlogged and written', async () => {
    const { store, reopen } = await open()
    await store.table<any>('Cat').put('a', 1)
    const again = await reopen()
    await again.table<any>('Cat', { log: false }).put('a', 2)
    expect(logged(again)).toEqual([['put', 'a', 1]])
  })

  it('opens a format 1 store and marks it format 2', async () => {
    const { store, path, reopen } = await open()
    await store.table('Dog').put('a', 1)
    await store.close()
    const env = openEnv({ path })
    await env.openDB({ name: '__meta' }).put('format', 1)
    await env.close()
    const again = await reopen()
    expect(again.table('Dog').get('a')).toBe(1)
    expect((again as unknown as { metaDb: { get(k: string): unknown } }).metaDb.get('format')).toBe(2)
  })
})
