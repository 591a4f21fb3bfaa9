import { describe, expect, it } from 'vitest'
import type { ChangeEvent } from '../src/index.js'
import { useStores } from './helpers.js'

type Internals = { writes: { inFlight: number } }

// A batch collects writes (and its transaction runs) while the one before it still commits and syncs.
describe('pipelined batches', () => {
  const open = useStores()

  it('plans a write against the writes still in flight to the same record', async () => {
    const { store } = await open()
    const dogs = store.table<any>('Dog')
    const put = dogs.put('k', { a: 1 })
    await Promise.resolve() // queued, not committed
    expect(dogs.get('k')).toBeUndefined()
    const patch = dogs.patch('k', { b: 2 })
    await Promise.resolve()
    const conditional = dogs.put('k', { c: 3 }, { ifVersion: (await put).timestamp })
    await expect(patch).resolves.toMatchObject({ value: { a: 1, b: 2 } })
    await expect(conditional).rejects.toMatchObject({ code: 'STORAGE_CONFLICT' })
    const removed = dogs.delete('k')
    await Promise.resolve()
    const recreated = dogs.patch('k', { d: 4 })
    expect(await removed).toMatchObject({ type: 'delete' })
    expect(await recreated).toMatchObject({ value: { d: 4 } })
    expect(dogs.get('k')).toEqual({ d: 4 })
  })

  it('completes batches that overlap in call order: promises, feed and log alike', async () => {
    const { store } = await open()
    const dogs = store.table<any>('Dog')
    const heard: number[] = []
    store.onChange((e) => heard.push(e.cursor))
    const resolved: number[] = []
    const writes: Promise<ChangeEvent>[] = []
    // a few writes every turn: each batch collects them while the one before it commits and syncs
    for (let turn = 0; turn < 30; turn++) {
      for (let i = 0; i < 5; i++)
        writes.push(
          dogs.put(`${turn}/${i}`, { turn, i }).then((e) => {
            resolved.push(e.cursor)
            return e
          }),
        )
      await new Promise((resolve) => setImmediate(resolve))
    }
    const events = await Promise.all(writes)
    const cursors = events.map((e) => e.cursor)
    expect(cursors).toEqual(Array.from({ length: 150 }, (_, i) => cursors[0]! + i))
    expect(resolved).toEqual(cursors)
    expect(heard).toEqual(cursors)
    expect([...store.log.readSince()].map((e) => e.cursor)).toEqual(cursors)
    expect((store as unknown as Internals).writes.inFlight).toBe(0)
  })
})
