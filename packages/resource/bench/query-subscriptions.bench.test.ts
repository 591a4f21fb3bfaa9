// Durable write throughput through the runtime with 100,000 query subscriptions attached, against the
// same writes with none, in one run (two runtimes, batches alternating between them; each batch is
// timed from the first `put` call to the last write's completion).
// Run: pnpm vitest run --config bench/vitest.config.ts bench/query-subscriptions.bench.test.ts
// BENCH_SUBSCRIPTIONS, BENCH_ROUNDS, BENCH_BATCH and BENCH_SCENARIO (sparse,dense) override.
//
// Subscriptions: 90% `category==c{k}` over 1,000 categories, 10% `price=ge={lo}&lt={lo+100}` over prices
// 0..10,000; each listener counts what it receives. Writes: each moves one of 10,000 records to a random
// category and price (`dense`: every write concerns ~380 subscriptions, each of which gets an event), or
// to a category and price no subscription watches (`sparse`, run first while every record is outside
// every subscription: the cost of finding that a write concerns nobody).
import { tempDir } from '@proj/test-utils'
import { it } from 'vitest'
import { openRuntime, type ResourceRuntime } from '../src/index.js'

const SUBSCRIPTIONS = Number(process.env.BENCH_SUBSCRIPTIONS ?? 100_000)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6)
const BATCH = Number(process.env.BENCH_BATCH ?? 2000)
const SCENARIOS = (process.env.BENCH_SCENARIO ?? 'sparse,dense').split(',')
const RECORDS = 10_000
const CATEGORIES = 1000
const PRICES = 10_000
const schema = 'type Product @table @export { id: ID @primaryKey name: String category: String price: Float }'
const ctx = { user: { username: 'admin', role: 'admin', superUser: true } }

function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const rand = rng(42)
const pick = (n: number) => Math.floor(rand() * n)

it('durable writes with 100,000 query subscriptions vs none', async () => {
  const dirs = [await tempDir('proj-qbench-'), await tempDir('proj-qbench-')]
  const runtimes: ResourceRuntime[] = []
  try {
    for (const dir of dirs)
      runtimes.push(
        await openRuntime({ path: dir.path, schemas: [{ source: schema }], allowAnonymous: false }),
      )
    const [none, subscribed] = runtimes as [ResourceRuntime, ResourceRuntime]
    for (const runtime of runtimes)
      await Promise.all(
        Array.from({ length: RECORDS }, (_, i) =>
          // Outside every subscription, so the sparse scenario's writes concern none before or after.
          runtime.put(
            `Product/${i}`,
            { name: `p${i}`, category: `x${i % CATEGORIES}`, price: PRICES * 2 + i },
            ctx,
          ),
        ),
      )
    let received = 0
    const listener = () => {
      received++
    }
    let start = performance.now()
    for (let i = 0; i < SUBSCRIPTIONS; i++) {
      const low = pick(PRICES)
      const query = i % 10 === 9 ? `price=ge=${low}&lt=${low + 100}` : `category=c${pick(CATEGORIES)}`
      await subscribed.subscribe(`Product/?${query}`, listener, { retained: false }, ctx)
    }
    console.log(`${SUBSCRIPTIONS} subscriptions made in ${Math.round(performance.now() - start)} ms`)

    for (const scenario of SCENARIOS) {
      const dense = scenario === 'dense'
      const value = (id: number) =>
        dense
          ? { name: `p${id}`, category: `c${pick(CATEGORIES)}`, price: pick(PRICES) + 0.5 }
          : { name: `p${id}`, category: `x${pick(CATEGORIES)}`, price: PRICES * 2 + pick(PRICES) }
      // The whole write is timed: the synchronous part of `put` (validation, encoding, planning) as
      // well as the commit and what the change feed does with it, subscribers included.
      const batch = async (runtime: ResourceRuntime) => {
        const t0 = performance.now()
        const cpu0 = process.cpuUsage()
        const writes = Array.from({ length: BATCH }, () => {
          const id = pick(RECORDS)
          return runtime.put(`Product/${id}`, value(id), ctx)
        })
        await Promise.all(writes)
        const cpu = process.cpuUsage(cpu0)
        return { ms: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000 }
      }
      // warm-up (the interval trees are built on the first change)
      await batch(none)
      await batch(subscribed)
      const totals = { none: { ms: 0, cpuMs: 0 }, subscribed: { ms: 0, cpuMs: 0 } }
      received = 0
      start = performance.now()
      for (let round = 0; round < ROUNDS; round++) {
        for (const [name, runtime] of round % 2 === 0
          ? ([
              ['none', none],
              ['subscribed', subscribed],
            ] as const)
          : ([
              ['subscribed', subscribed],
              ['none', none],
            ] as const)) {
          const r = await batch(runtime)
          totals[name].ms += r.ms
          totals[name].cpuMs += r.cpuMs
        }
      }
      const writes = ROUNDS * BATCH
      const rate = (t: { ms: number }) => Math.round((writes / t.ms) * 1000)
      const us = (ms: number) => ((ms * 1000) / writes).toFixed(1)
      console.log(
        [
          `scenario ${scenario}: ${writes} durable puts each way, batches of ${BATCH}`,
          `  no subscriptions:      ${rate(totals.none).toLocaleString()} writes/s, ${us(totals.none.cpuMs)} µs CPU per write`,
          `  ${SUBSCRIPTIONS} subscriptions: ${rate(totals.subscribed).toLocaleString()} writes/s, ${us(totals.subscribed.cpuMs)} µs CPU per write`,
          `  ratio (subscribed / none): ${(rate(totals.subscribed) / rate(totals.none)).toFixed(2)} throughput, ${(totals.none.cpuMs / totals.subscribed.cpuMs).toFixed(2)} CPU per write; ${(received / writes).toFixed(0)} events delivered per write`,
        ].join('\n'),
      )
    }
  } finally {
    for (const runtime of runtimes) await runtime.close()
    for (const dir of dirs) await dir.remove()
  }
}, 600_000)
