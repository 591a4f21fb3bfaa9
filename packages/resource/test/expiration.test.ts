import { afterEach, describe, expect, it, vi } from 'vitest'
import type { ResourceEvent, ResourceRuntime, Table } from '../src/index.js'
import { admin, runtimeFixture } from './helpers.js'

const SCHEMA = `
type Session @table(expiration: 2) @export {
  id: ID @primaryKey
  user: String @indexed
}
`
const options = { applications: [], schemas: [{ source: SCHEMA, file: 'sessions.graphql' }] }

/** Resolves with the first event `check` accepts; rejects after `ms` of real time. */
function nextEvent(
  runtime: ResourceRuntime,
  filter: string,
  check: (event: ResourceEvent) => boolean,
  ms = 5000,
): Promise<ResourceEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no matching event on ${filter} within ${ms} ms`)), ms)
    void runtime.subscribe(
      filter,
      (event) => {
        if (!check(event)) return
        clearTimeout(timer)
        resolve(event)
      },
      { retained: false },
      admin,
    )
  })
}

afterEach(() => {
  vi.useRealTimers()
})

describe('@table(expiration)', () => {
  it('hides records once expired and deletes them (and their index entries) on the sweep', async () => {
    // Only the clock and the sweep interval are fake: storage commits still run on real I/O.
    vi.useFakeTimers({ toFake: ['Date', 'setInterval', 'clearInterval'] })
    await using f = await runtimeFixture(options)
    const { runtime } = f
    await runtime.put('Session/s1', { user: 'ann' }, admin)
    await runtime.put('Session/s2', { user: 'bob' }, admin)
    const table = runtime.resolve('Session')!.resource as Table
    expect((await runtime.list('Session', { where: { user: 'ann' } }, admin)).map((r) => r.id)).toEqual([
      's1',
    ])

    vi.advanceTimersByTime(1000) // a sweep runs (every max(1 s, expiration / 2)); nothing is old enough
    await runtime.put('Session/s2', { user: 'bob' }, admin) // a write renews s2
    vi.advanceTimersByTime(1500) // s1 is 2.5 s old, s2 1.5 s: the next sweep has not run yet
    expect(await runtime.get('Session/s1', admin)).toBeUndefined()
    expect(await runtime.list('Session', { where: { user: 'ann' } }, admin)).toEqual([])
    expect(table.table.get('s1')).toBeDefined() // hidden, not yet deleted

    const deleted = nextEvent(runtime, 'Session/#', (e) => e.type === 'delete')
    vi.advanceTimersByTime(500) // the sweep at 3 s deletes s1
    expect(await deleted).toMatchObject({ type: 'delete', id: 's1', user: 'expiration' })
    expect(table.table.get('s1')).toBeUndefined()
    expect([...table.indexes.get('user')!.table.entries()].map((e) => e.id)).toEqual([[3, 'bob', 's2']])
    expect((await runtime.get('Session/s2', admin))?.value).toEqual({ user: 'bob', id: 's2' })
  })

  it('removeExpired deletes only records past their expiration and skips ones rewritten meanwhile', async () => {
    await using f = await runtimeFixture(options)
    const { runtime } = f
    await runtime.put('Session/a', { user: 'ann' }, admin)
    const table = runtime.resolve('Session')!.resource as Table
    expect(await table.removeExpired()).toBe(0)
    const now = Date.now()
    const clock = vi.spyOn(Date, 'now').mockReturnValue(now + 2500)
    try {
      expect(await table.removeExpired()).toBe(1)
    } finally {
      clock.mockRestore()
    }
    expect(table.table.get('a')).toBeUndefined()
  })
})
