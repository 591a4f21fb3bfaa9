import { waitFor } from '@proj/test-utils'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { ResourceEvent } from '../src/index.js'
import { admin, runtimeFixture } from './helpers.js'

// Subscriptions with the same conditions share a group, which calls its members from arrays (inline for
// one or two plain members) rather than through each subscription. Whatever the group's size and its
// members' kinds, and whatever a listener does while a change is handed out (closing members, itself
// included, or subscribing new ones), each member present when the change came and not closed before its
// turn gets it exactly once, a closed one never, and one added meanwhile only the changes after it.
const kind = fc.constantFrom('plain', 'plain', 'plain', 'noLocal', 'select', 'replayed')
const member = fc.record({
  kind,
  // what its listener does on the first change it gets: close these members (by index), add some
  closes: fc.array(fc.nat(4), { maxLength: 2 }),
  adds: fc.nat(2),
})
const scenario = fc.record({
  range: fc.boolean(),
  members: fc.array(member, { minLength: 1, maxLength: 5 }),
})
type Scenario = typeof scenario extends fc.Arbitrary<infer S> ? S : never
const plain = (closes: number[] = [], adds = 0) => ({ kind: 'plain', closes, adds })
// The inline cases: the first of two plain members closes the second, itself, or adds one.
const examples: [Scenario][] = [true, false].flatMap((range) =>
  [[plain([1]), plain()], [plain([0]), plain()], [plain([], 1), plain()], [plain([0, 1])]].map(
    (members) => [{ range, members }] as [Scenario],
  ),
)

describe('a group of query subscriptions', () => {
  it('hands each change to the members there were, once, through closes and adds by listeners', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const me = { ...admin, clientId: 'me' }
    // A change to the sentinel record comes after every listener of the change before it has run.
    const sentinel: string[] = []
    await runtime.subscribe('Dog/?age==-1', (e) => sentinel.push(String(e.id)), { retained: false }, admin)
    let run = 0
    const settle = async () => {
      const id = `s${run}-${sentinel.length}`
      await runtime.put(`Dog/${id}`, { name: id, age: -1 }, admin)
      await waitFor(() => sentinel.includes(id))
    }
    await fc.assert(
      fc.asyncProperty(scenario, async ({ range, members }) => {
        run++
        const age = 1000 + run
        const conditions = range ? `age=ge=${age}&le=${age}` : `age==${age}`
        const filter = (select: boolean) => `Dog/?${select ? 'select(name)&' : ''}${conditions}`
        const handles: { close(): void; ready: Promise<void> }[] = []
        const closed = new Set<number>()
        const got = new Map<number, string[]>()
        const late: Promise<unknown>[] = []
        // What a listener saw wrong (a throw inside it would only be logged by the runtime).
        const wrong: string[] = []
        let count = 0
        let delivering = false
        const listen =
          (index: number, acts: (typeof members)[number] | undefined) => (event: ResourceEvent) => {
            if (closed.has(index)) wrong.push(`member ${index} got ${event.type} after it was closed`)
            const seen = got.get(index) ?? []
            got.set(index, seen)
            seen.push(event.type)
            if (!delivering || acts === undefined || seen.length !== 1) return
            for (const c of acts.closes)
              if (handles[c] !== undefined && !closed.has(c)) {
                closed.add(c)
                handles[c]!.close()
              }
            for (let k = 0; k < acts.adds; k++) late.push(subscribe(undefined))
          }
        const subscribe = async (acts: (typeof members)[number] | undefined) => {
          const index = count++
          const kind = acts?.kind ?? 'plain'
          const handle = await runtime.subscribe(
            filter(kind === 'select'),
            listen(index, acts),
            kind === 'replayed'
              ? { after: runtime.storage.log.lastCursor }
              : { retained: false, noLocal: kind === 'noLocal' },
            kind === 'noLocal' ? { ...admin, clientId: 'other' } : me,
          )
          handles[index] = handle
          await handle.ready
        }
        for (const m of members) await subscribe(m)
        const starters = members.length
        delivering = true
        await runtime.put(`Dog/r${run}`, { name: 'first', age }, me)
        await settle()
        delivering = false
        await Promise.all(late)
        for (let i = 0; i < starters; i++) {
          const seen = got.get(i) ?? []
          expect(seen.length, `member ${i} got the first change ${seen.length} times`).toBeLessThanOrEqual(1)
          // A member closed during the hand-out may or may not have had its turn; one never closed had it.
          if (!closed.has(i)) expect(seen, `member ${i}`).toEqual(['put'])
        }
        for (let i = starters; i < count; i++)
          expect(got.get(i), `member ${i} added meanwhile`).toBe(undefined)
        const before = new Map([...got].map(([i, seen]) => [i, seen.length]))
        await runtime.patch(`Dog/r${run}`, { name: 'second' }, me)
        await settle()
        for (let i = 0; i < count; i++) {
          const seen = got.get(i) ?? []
          const added = seen.slice(before.get(i) ?? 0)
          expect(added, `member ${i} on the second change`).toEqual(closed.has(i) ? [] : ['patch'])
        }
        expect(wrong).toEqual([])
        for (let i = 0; i < count; i++) if (!closed.has(i)) handles[i]!.close()
      }),
      { numRuns: 60, examples },
    )
    expect(runtime.subscriptionCount).toBe(1)
  }, 60_000)
})
