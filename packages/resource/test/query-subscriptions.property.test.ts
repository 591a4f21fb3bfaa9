import { compileQuery } from '@proj/query'
import { waitFor } from '@proj/test-utils'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { ResourceEvent } from '../src/index.js'
import { admin, bytes, runtimeFixture } from './helpers.js'

// What each subscriber holds, rebuilt from the events it received, must equal a brute-force filter of the
// table after random writes (put, patch, delete, retained publish, messages), live and after a resume.
const names = ['a', 'b', 'c']
const condition = fc.oneof(
  fc.constantFrom(...names).map((n) => `name=${n}`),
  fc.constantFrom(...names).map((n) => `name!=${n}`),
  fc.integer({ min: 0, max: 9 }).map((n) => `age=gt=${n}`),
  fc.integer({ min: 0, max: 9 }).map((n) => `age=le=${n}`),
  fc
    .tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 3, max: 9 }))
    .map(([l, h]) => `age=ge=${l}&lt=${h}`),
  fc.constantFrom(...names).map((n) => `tags=${n}`),
)
const query = fc.oneof(
  condition,
  fc.tuple(condition, condition).map(([a, b]) => `${a}&${b}`),
  fc.tuple(condition, condition).map(([a, b]) => `(${a})|(${b})`),
)
const value = fc.record(
  {
    name: fc.constantFrom(...names),
    age: fc.integer({ min: 0, max: 9 }),
    tags: fc.array(fc.constantFrom(...names), { maxLength: 2 }),
  },
  { requiredKeys: [] },
)
const write = fc.record({
  kind: fc.constantFrom('put', 'patch', 'delete', 'retained', 'message'),
  id: fc.integer({ min: 1, max: 6 }),
  value,
})

type View = Map<string, unknown>

function follow(view: View, messages: string[]) {
  return (event: ResourceEvent) => {
    const id = String(event.id)
    if (event.type === 'put' || event.type === 'patch') view.set(id, event.value)
    else if (event.type === 'leave' || event.type === 'delete') {
      expect(view.has(id), `${event.type} of ${id}, which the subscriber does not hold`).toBe(true)
      view.delete(id)
    } else if (event.type === 'message') {
      expect(view.has(id), `message to ${id}, which is not in the result`).toBe(true)
      messages.push(id)
    } else if (event.type === 'reset') view.clear()
  }
}

describe('query subscriptions agree with filtering the table', () => {
  it('on random writes and random queries, live and resumed', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    let round = 0
    await fc.assert(
      fc.asyncProperty(
        fc.array(query, { minLength: 1, maxLength: 6 }),
        fc.array(write, { maxLength: 40 }),
        async (queries, writes) => {
          const path = `Anything`
          round++
          // a fresh set of ids per run, so runs do not see each other's records
          const idOf = (n: number) => `r${round}-${n}`
          const views = queries.map(() => new Map<string, unknown>())
          const messages = queries.map(() => [] as string[])
          const subs = []
          for (const [i, q] of queries.entries()) {
            subs.push(
              await runtime.subscribe(
                `${path}/?id=sw=r${round}-&(${q})`,
                follow(views[i]!, messages[i]!),
                {},
                admin,
              ),
            )
          }
          await Promise.all(subs.map((s) => s.ready))
          const resumeAt = runtime.storage.log.lastCursor
          const resumedViews = queries.map(() => new Map<string, unknown>())
          let last: Promise<unknown> = Promise.resolve()
          for (const w of writes) {
            const topic = `${path}/${idOf(w.id)}`
            if (w.kind === 'put') last = runtime.put(topic, w.value, admin)
            else if (w.kind === 'patch') last = runtime.patch(topic, w.value, admin).catch(() => {})
            else if (w.kind === 'delete') last = runtime.delete(topic, admin)
            else
              last = runtime.publish(
                topic,
                { payload: bytes(JSON.stringify(w.value)), retain: w.kind === 'retained', qos: 1 },
                admin,
              )
            await last
          }
          const table = [...(await runtime.list(path, {}, admin))].filter((r) =>
            String(r.id).startsWith(`r${round}-`),
          )
          for (const [i, q] of queries.entries()) {
            const { matches } = compileQuery(q, {})
            const expected = new Map(
              table.filter((r) => matches(r.value)).map((r) => [String(r.id), r.value] as const),
            )
            await waitFor(() => views[i]!.size === expected.size)
            expect(new Map([...views[i]!].sort()), q).toEqual(new Map([...expected].sort()))
          }
          // a subscriber resuming from before the writes ends up with the same result
          for (const [i, q] of queries.entries()) {
            const resumed = resumedViews[i]!
            const sub = await runtime.subscribe(
              `${path}/?id=sw=r${round}-&(${q})`,
              follow(resumed, []),
              { after: resumeAt, retained: false },
              admin,
            )
            await sub.ready
            // the state at resumeAt was empty (fresh ids), so the replay alone must rebuild the result
            expect(new Map([...resumed].sort()), `resumed ${q}`).toEqual(new Map([...views[i]!].sort()))
            sub.close()
          }
          for (const s of subs) s.close()
        },
      ),
      { numRuns: 80, seed: 20261202 },
    )
  }, 120_000)
})
