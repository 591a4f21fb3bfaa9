// Matching record changes against 100,000 live query subscriptions, and what it adds to a write.
// Run: pnpm bench (after pnpm build). BENCH_SUBSCRIPTIONS, BENCH_TIME_MS and BENCH_WRITES override.
//
// Subscriptions: 90% `category==c{k}` (k among 1,000 values), 10% `price=ge={lo}&lt={lo+100}`
// (prices 0..10,000). Each change moves one record to a random category and price.
// 1. the index: changes(old, new) per change (candidates + enter/update/leave for each);
// 2. brute force, every subscription's predicate on old and new, for contrast;
// 3. durable LMDB writes (each awaited commit is synced, many writes per commit as the runtime
//    batches them) with and without the index matching every write, in one run.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { open } from 'lmdb'
import { Bench } from 'tinybench'
import { bindFilter, compileFilter, parseQuery, QuerySubscriptionIndex } from '../dist/index.js'

const SUBSCRIPTIONS = Number(process.env.BENCH_SUBSCRIPTIONS ?? 100_000)
const TIME = Number(process.env.BENCH_TIME_MS ?? 1500)
const WRITES = Number(process.env.BENCH_WRITES ?? 20_000)
const BATCH = 1000
const CATEGORIES = 1000
const PRICES = 10_000
const types = (path) => (path[0] === 'price' ? 'Float' : path[0] === 'category' ? 'String' : undefined)

function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const rand = rng(42)
const pick = (n) => Math.floor(rand() * n)

const heapMb = () => {
  globalThis.gc?.()
  return process.memoryUsage().heapUsed / 2 ** 20
}

const queries = Array.from({ length: SUBSCRIPTIONS }, (_, i) => {
  if (i % 10 === 9) {
    const low = pick(PRICES)
    return `price=ge=${low}&lt=${low + 100}`
  }
  return `category=c${pick(CATEGORIES)}`
})
const filters = queries.map((q) => bindFilter(parseQuery(q).filter, types))

const record = (id) => ({
  id,
  name: `item ${id}`,
  category: `c${pick(CATEGORIES)}`,
  price: pick(PRICES) + 0.5,
})
const changes = Array.from({ length: BATCH }, (_, i) => [record(i), record(i)])

const heapBefore = heapMb()
let start = performance.now()
const index = new QuerySubscriptionIndex()
filters.forEach((filter, i) => {
  index.add(i, filter)
})
const buildMs = performance.now() - start
const heap = heapMb() - heapBefore
// The first change builds the interval trees (lazily, once).
start = performance.now()
index.changes(changes[0][0], changes[0][1], () => {})
const firstMs = performance.now() - start

let candidates = 0
let transitions = 0
for (const [before, after] of changes) {
  candidates += index.candidates(before, after).length
  transitions += index.changes(before, after, () => {})
}

const predicates = filters.map((f) => compileFilter(f))
const bench = new Bench({ time: TIME, warmupTime: 200 })
bench.add('index.changes() per change', () => {
  for (const [before, after] of changes) index.changes(before, after, () => {})
})
await bench.run()
// Brute force is slow: 20 changes per iteration, a few iterations.
const BRUTE = 20
const slow = new Bench({ time: 0, iterations: 5, warmupIterations: 1 })
slow.add('brute force per change', () => {
  for (let c = 0; c < BRUTE; c++) {
    const [before, after] = changes[c]
    for (let i = 0; i < predicates.length; i++) {
      const p = predicates[i]
      p(before)
      p(after)
    }
  }
})
await slow.run()
const perChangeUs = (task, per) => (task.result.latency.mean * 1000) / per

// CPU time (user + system) as well as wall time: on a shared machine, wall time includes waiting.
const cpuMs = () => {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1000
}
let cpuStart = cpuMs()
for (let r = 0; r < 20; r++) for (const [before, after] of changes) index.changes(before, after, () => {})
const indexCpuUs = ((cpuMs() - cpuStart) / (20 * BATCH)) * 1000
// Changes that concern no subscription (a category and prices nobody watches): the fixed cost.
const unwatched = changes.map(([before, after]) => [
  { ...before, category: 'none', price: PRICES * 2 },
  { ...after, category: 'none', price: PRICES * 3 },
])
cpuStart = cpuMs()
for (let r = 0; r < 20; r++) for (const [before, after] of unwatched) index.changes(before, after, () => {})
const idleCpuUs = ((cpuMs() - cpuStart) / (20 * BATCH)) * 1000
cpuStart = cpuMs()
for (let c = 0; c < BRUTE; c++) {
  const [before, after] = changes[c]
  for (let i = 0; i < predicates.length; i++) {
    predicates[i](before)
    predicates[i](after)
  }
}
const bruteCpuUs = ((cpuMs() - cpuStart) / BRUTE) * 1000

// Durable writes, A/B in one run, alternating so that machine load hits both alike.
const dir = mkdtempSync(join(tmpdir(), 'query-bench-'))
const db = open({ path: dir, compression: false })
const stored = new Map()
async function writeBatch(count, match) {
  const pending = []
  for (let i = 0; i < count; i++) {
    const id = pick(10_000)
    const before = stored.get(id)
    const after = record(id)
    stored.set(id, after)
    pending.push(db.put(id, after))
    if (match) index.changes(before, after, () => {})
  }
  await Promise.all(pending)
}
const timing = { with: 0, without: 0 }
const cpu = { with: 0, without: 0 }
await writeBatch(BATCH, true) // warm up
for (let round = 0; round < WRITES / BATCH; round++) {
  for (const match of round % 2 === 0 ? [false, true] : [true, false]) {
    const t = performance.now()
    const c = cpuMs()
    await writeBatch(BATCH, match)
    timing[match ? 'with' : 'without'] += performance.now() - t
    cpu[match ? 'with' : 'without'] += cpuMs() - c
  }
}
await db.close()
rmSync(dir, { recursive: true, force: true })

const fmt = (x, digits = 0) =>
  x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
const [indexed] = bench.tasks
const [brute] = slow.tasks
console.log(
  `\n${fmt(SUBSCRIPTIONS)} subscriptions: ${fmt(index.stats.indexed)} indexed, ${fmt(index.stats.residual)} residual`,
)
console.log(
  `build ${fmt(buildMs)} ms, first change (builds the interval trees) ${fmt(firstMs, 1)} ms, heap ${fmt(heap)} MB`,
)
console.log(
  `per change: ${fmt(candidates / BATCH, 1)} candidates, ${fmt(transitions / BATCH, 1)} transitions\n`,
)
const perMode = WRITES
const us = (ms, n) => fmt((ms / n) * 1000, 1)
console.log('| measure | wall time per change | CPU time per change |')
console.log('|---|---:|---:|')
console.log(
  `| index.changes() with ${fmt(SUBSCRIPTIONS)} subscriptions | ${fmt(perChangeUs(indexed, BATCH), 1)} µs | ${fmt(indexCpuUs, 1)} µs |`,
)
console.log(`| index.changes(), a change no subscription watches | | ${fmt(idleCpuUs, 2)} µs |`)
console.log(
  `| brute force (every predicate on old and new) | ${fmt(perChangeUs(brute, BRUTE), 0)} µs | ${fmt(bruteCpuUs, 0)} µs |`,
)
console.log(
  `| durable LMDB write, no subscriptions | ${us(timing.without, perMode)} µs | ${us(cpu.without, perMode)} µs |`,
)
console.log(
  `| durable LMDB write + index.changes() | ${us(timing.with, perMode)} µs | ${us(cpu.with, perMode)} µs |`,
)
console.log(
  `\nwrites/s: ${fmt((perMode / timing.without) * 1000)} without subscriptions, ${fmt((perMode / timing.with) * 1000)} with ${fmt(SUBSCRIPTIONS)} (wall time ${fmt((timing.with / timing.without - 1) * 100, 1)}% more, CPU time ${fmt((cpu.with / cpu.without - 1) * 100, 1)}% more)`,
)
