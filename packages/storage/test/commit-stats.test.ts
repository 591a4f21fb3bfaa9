import { describe, expect, it, vi } from 'vitest'
import type { CommitStats } from '../src/index.js'
import { useStores } from './helpers.js'

describe('store.onCommit', () => {
  const open = useStores()

  it('reports each durable commit with its number of writes and its timing', async () => {
    const { store } = await open()
    const dogs = store.table('Dog')
    const seen: CommitStats[] = []
    const stop = store.onCommit((s) => seen.push(s))
    // three writes queued in one turn go into one LMDB transaction
    await Promise.all([dogs.put('a', 1), dogs.put('b', 2), dogs.put('c', 3)])
    expect(seen.reduce((n, s) => n + s.writes, 0)).toBe(3)
    for (const s of seen) {
      expect(s.commitMs).toBeGreaterThanOrEqual(0)
      expect(s.syncMs).toBeGreaterThanOrEqual(0)
    }
    stop()
    await dogs.put('d', 4)
    expect(seen.reduce((n, s) => n + s.writes, 0)).toBe(3)
  })

  it('reports no fsync time when commits are not synced', async () => {
    const { store } = await open({ noSync: true })
    const seen: CommitStats[] = []
    store.onCommit((s) => seen.push(s))
    await store.table('Dog').put('a', 1)
    expect(seen).toHaveLength(1)
    expect(seen[0]).toMatchObject({ writes: 1, syncMs: 0 })
  })

  it('a listener that throws does not fail the write', async () => {
    const errors: unknown[] = []
    const { store } = await open({ onError: (e) => errors.push(e) })
    store.onCommit(() => {
      throw new Error('listener bug')
    })
    await expect(store.table('Dog').put('a', 1)).resolves.toMatchObject({ type: 'put' })
    await vi.waitFor(() => expect(errors).toHaveLength(1))
  })
})
