import { describe, expect, it } from 'vitest'
import type { ChangeEvent } from '../src/index.js'
import { useStores } from './helpers.js'

describe('previous values', () => {
  const open = useStores()

  it('carries the replaced record on live events and in the log, for every kind of write', async () => {
    const { store, reopen } = await open()
    const dogs = store.table<{ n: number }>('Dog', { previous: true })
    const live: ChangeEvent[] = []
    store.onChange((e) => live.push(e))
    await dogs.put('a', { n: 1 })
    await dogs.put('a', { n: 2 })
    await dogs.patch('a', { n: 3 })
    await dogs.message('a', { n: 99 })
    await dogs.delete('a')
    await dogs.message('a', { n: 100 })
    await store.transaction((txn) => {
      txn.put(dogs, 'b', { n: 1 })
      txn.put(dogs, 'b', { n: 2 })
      txn.delete(dogs, 'b')
    })
    const expected = [
      null,
      { value: { n: 1 } },
      { value: { n: 2 } },
      { value: { n: 3 } },
      { value: { n: 3 } },
    ]
    const more = [null, null, { value: { n: 1 } }, { value: { n: 2 } }]
    expect(live.map((e) => e.previous)).toEqual([...expected, ...more])
    const logged = [...store.log.readSince({ after: 0 })]
    expect(logged.map((e) => e.previous)).toEqual([...expected, ...more])
    const again = await reopen()
    expect([...again.log.readSince({ after: 0 })].map((e) => e.previous)).toEqual([...expected, ...more])
  })

  it('leaves events of other tables as before, and switches on for a table opened again with it', async () => {
    const { store } = await open()
    const cats = store.table('Cat')
    await cats.put('a', 1)
    expect([...store.log.readSince({ after: 0 })][0]).not.toHaveProperty('previous')
    store.table('Cat', { previous: true })
    const change = await cats.put('a', 2)
    expect(change.previous).toEqual({ value: 1 })
    expect([...store.log.readSince({ after: 1 })][0]!.previous).toEqual({ value: 1 })
    // A table without a log has no events to carry it.
    const state = store.table('state', { log: false, previous: true })
    expect((await state.put('x', 1)).previous).toBeUndefined()
  })
})
