// Subscription matching with 100k and 1M filters (wildcards included), side by side with qlobber
// (the matcher Aedes uses). Run: pnpm bench (after pnpm build). BENCH_SIZES=100000 to run one size.
// Each library is built, measured and dropped in turn, so that only one 1M-filter index is alive.
import qlobber from 'qlobber'
import QlobberSub from 'qlobber/aedes/qlobber-sub.js'
import { Bench } from 'tinybench'
import { SubscriptionTrie } from '../dist/index.js'

const { Qlobber } = qlobber
const sizes = (process.env.BENCH_SIZES ?? '100000,1000000').split(',').map(Number)
const TIME = Number(process.env.BENCH_TIME_MS ?? 1500)
const BATCH = 1000

// Deterministic PRNG (mulberry32) so that every run uses the same filters and topics.
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Filters shaped like a broker's: tenant/device/sensor records, with + and # at various levels. */
function makeFilters(n, rand) {
  const tenants = Math.max(10, Math.round(n / 1000))
  const pick = (k) => Math.floor(rand() * k)
  const filters = new Array(n)
  for (let i = 0; i < n; i++) {
    const t = `t${pick(tenants)}`
    const d = `d${pick(1000)}`
    const s = `s${pick(10)}`
    const r = rand()
    filters[i] =
      r < 0.5
        ? `${t}/${d}/${s}`
        : r < 0.7
          ? `${t}/${d}/+`
          : r < 0.85
            ? `${t}/+/${s}`
            : r < 0.95
              ? `${t}/${d}/#`
              : r < 0.99
                ? `+/${d}/${s}`
                : `${t}/#`
  }
  return { filters, tenants }
}

function makeTopics(count, tenants, rand) {
  const pick = (k) => Math.floor(rand() * k)
  return Array.from({ length: count }, () => `t${pick(tenants)}/d${pick(1000)}/s${pick(10)}`)
}

const heapMb = () => {
  globalThis.gc?.()
  return process.memoryUsage().heapUsed / 2 ** 20
}

const rows = []
for (const n of sizes) {
  const { filters, tenants } = makeFilters(n, rng(n))
  const topics = makeTopics(BATCH, tenants, rng(7))
  const subscriberOf = (i) => `client-${i % Math.ceil(n / 5)}` // five filters per client on average

  const contenders = [
    {
      name: '@proj/topic-matcher match()',
      build: () => {
        const trie = new SubscriptionTrie()
        for (let i = 0; i < n; i++) trie.add(filters[i], subscriberOf(i), { qos: 1 })
        return trie
      },
      run: (trie) => {
        let found = 0
        for (const topic of topics) found += trie.match(topic).subscribers.length
        return found
      },
    },
    {
      name: '@proj/topic-matcher forEachMatch()',
      build: null, // reuses the index built for match()
      run: (trie) => {
        let found = 0
        const count = () => {
          found++
        }
        for (const topic of topics) trie.forEachMatch(topic, count)
        return found
      },
    },
    {
      name: 'qlobber Qlobber',
      build: () => {
        const q = new Qlobber({
          separator: '/',
          wildcard_one: '+',
          wildcard_some: '#',
          match_empty_levels: true,
        })
        for (let i = 0; i < n; i++) q.add(filters[i], subscriberOf(i))
        return q
      },
      run: (q) => {
        let found = 0
        for (const topic of topics) found += q.match(topic).length
        return found
      },
    },
    {
      name: 'qlobber QlobberSub (Aedes)',
      build: () => {
        const q = new QlobberSub({
          separator: '/',
          wildcard_one: '+',
          wildcard_some: '#',
          match_empty_levels: true,
        })
        for (let i = 0; i < n; i++)
          q.add(filters[i], { clientId: subscriberOf(i), topic: filters[i], qos: 1 })
        return q
      },
      run: (q) => {
        let found = 0
        for (const topic of topics) found += q.match(topic).length
        return found
      },
    },
  ]

  let index
  for (const c of contenders) {
    let buildMs = 0
    let heap = 0
    if (c.build !== null) {
      index = undefined
      const before = heapMb()
      const start = performance.now()
      index = c.build()
      buildMs = performance.now() - start
      heap = heapMb() - before
    }
    const found = c.run(index)
    const bench = new Bench({ time: TIME, warmupTime: 200 })
    bench.add(c.name, () => {
      c.run(index)
    })
    await bench.run()
    const r = bench.tasks[0].result
    const matchesPerSecond = r.throughput.mean * BATCH
    rows.push({
      filters: n,
      name: c.name,
      matchesPerSecond,
      buildMs,
      heap,
      found,
    })
    console.error(`${n} ${c.name}: ${Math.round(matchesPerSecond).toLocaleString('en-US')} topics/s`)
  }
  index = undefined
}

const fmt = (x) => Math.round(x).toLocaleString('en-US')
console.log('\n| filters | matcher | topics matched/s | build (ms) | heap (MB) | results per 1000 topics |')
console.log('|---:|---|---:|---:|---:|---:|')
for (const r of rows) {
  console.log(
    `| ${fmt(r.filters)} | ${r.name} | ${fmt(r.matchesPerSecond)} | ${r.buildMs ? fmt(r.buildMs) : '(same)'} | ${r.heap ? fmt(r.heap) : '(same)'} | ${fmt(r.found)} |`,
  )
}
