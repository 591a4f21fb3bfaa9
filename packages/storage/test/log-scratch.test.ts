import { describe, expect, it } from 'vitest'
import type { ChangeEvent } from '../src/index.js'
import { useStores } from './helpers.js'

// A single write's log entry and record are built in reused buffers and written at once (write-queue.ts,
// Scratch), and a frozen meta of primitives is encoded once (write-plan.ts, encodeMeta). Both must
// leave every entry exactly as its own write made it, across writes of one batch and across batches.

const read = (events: Iterable<ChangeEvent>) =>
  [...events].map((e) => [e.type, e.id, e.value, e.meta, e.user])

describe('log entries written through the scratch buffer', () => {
  const open = useStores()

  it('keeps each entry of a batch, small and larger than the buffer, in order and intact', async () => {
    const { store, reopen } = await open()
    const topics = store.table('Topic')
    const sizes = [10, 5000, 70_000, 3, 64, 1]
    const value = (i: number) => ({ payload: Buffer.alloc(sizes[i]!, 97 + i), n: i })
    // one turn: every write goes into the same transaction, one after another through the scratch
    const writes = sizes.map((_, i) =>
      i % 2 === 0
        ? topics.message(`t/${i}`, value(i), { user: `u${i}`, meta: { i } })
        : topics.put(`t/${i}`, value(i), { user: `u${i}`, meta: { i } }),
    )
    await Promise.all(writes)
    // a second batch after the buffer grew
    await topics.message('t/last', { payload: Buffer.from('z'), n: 9 }, { meta: { i: 9 } })
    const expected = [
      ...sizes.map((_, i) => [i % 2 === 0 ? 'message' : 'put', `t/${i}`, value(i), { i }, `u${i}`]),
      ['message', 't/last', { payload: Buffer.from('z'), n: 9 }, { i: 9 }, undefined],
    ]
    expect(read(store.log.readSince({ after: 0 }))).toEqual(expected)
    // exactly each entry's bytes are stored, not the rest of the buffer
    const logDb = (store as unknown as { logDb: { getBinary(k: number): Buffer } }).logDb
    const stored = [...store.log.readSince({ after: 0 })].map((e) => logDb.getBinary(e.cursor).length)
    expect(stored[0]).toBeLessThan(100)
    expect(stored[2]).toBeGreaterThan(70_000)
    expect(stored[4]).toBeLessThan(200)
    expect(stored[6]).toBeLessThan(100)
    for (const i of [1, 3, 5]) expect(topics.get(`t/${i}`)).toEqual(value(i))
    const again = await reopen()
    expect(read(again.log.readSince({ after: 0 }))).toEqual(expected)
    for (const i of [1, 3, 5]) expect(again.table('Topic').get(`t/${i}`)).toEqual(value(i))
    // a put replacing a record whose entry refers to it: the entry gets the value, the record the new one
    await again.table('Topic').put('t/1', { n: 10 })
    expect(again.table('Topic').get('t/1')).toEqual({ n: 10 })
    expect(read(again.log.readSince({ after: 0 }))[1]).toEqual(expected[1])
  })

  it('encodes a frozen meta once and any other meta as it is at each call', async () => {
    const { store } = await open()
    const topics = store.table('Topic')
    const frozen = Object.freeze({ qos: 1, clientId: 'c1' })
    const mutable: Record<string, unknown> = { qos: 1, clientId: 'c2' }
    const nested = Object.freeze({ qos: 1, properties: { k: 'a' } as Record<string, string> })
    const writes = [
      topics.message('a', 1, { meta: frozen }),
      topics.message('b', 2, { meta: mutable }),
      topics.message('c', 3, { meta: nested }),
    ]
    mutable.clientId = 'c3'
    nested.properties.k = 'b'
    writes.push(
      topics.message('a', 4, { meta: frozen }),
      topics.message('b', 5, { meta: mutable }),
      topics.message('c', 6, { meta: nested }),
    )
    await Promise.all(writes)
    expect(read(store.log.readSince({ after: 0 })).map((e) => [e[1], e[2], e[3]])).toEqual([
      ['a', 1, { qos: 1, clientId: 'c1' }],
      ['b', 2, { qos: 1, clientId: 'c2' }],
      ['c', 3, { qos: 1, properties: { k: 'a' } }],
      ['a', 4, { qos: 1, clientId: 'c1' }],
      ['b', 5, { qos: 1, clientId: 'c3' }],
      ['c', 6, { qos: 1, properties: { k: 'b' } }],
    ])
  })
})
