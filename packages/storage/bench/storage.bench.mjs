// Records per second for @proj/storage against raw lmdb-js in the same run. Run: pnpm bench (after
// pnpm build). BENCH_TIME_MS sets the time per task (default 800 ms); the whole run stays under a minute.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { open } from 'lmdb'
import { Bench } from 'tinybench'
import { openStore } from '../dist/index.js'

const BATCH = 1000
const record = {
  id: 'dog-12345',
  name: 'Rex the Third',
  breed: 'Border Collie',
  age: 7,
  weightKg: 18.4,
  vaccinated: true,
  owner: { id: 'user-987', name: 'Ada Lovelace', email: 'ada@example.org' },
  tags: ['friendly', 'herding'],
  updatedAt: '2024-02-29T12:30:45.123Z',
}

const dirs = []
const temp = () => {
  const dir = mkdtempSync(join(tmpdir(), 'proj-storage-bench-'))
  dirs.push(dir)
  return dir
}

const store = await openStore({ path: temp(), compactionIntervalMs: 0 })
const fast = await openStore({ path: temp(), noSync: true, compactionIntervalMs: 0 })
const dogs = store.table('Dog')
const sessions = store.table('Session', { log: false })
const fastDogs = fast.table('Dog')
const rawEnv = open({ path: temp(), maxDbs: 4 })
const raw = rawEnv.openDB({ name: 'raw' })

let seq = 0
const randomKey = () => `k${Math.floor(Math.random() * 1e9)}`
const seqKey = () => `s${String(++seq).padStart(10, '0')}`

// data to read back
for (let i = 0; i < 10_000; i += BATCH) {
  await Promise.all(Array.from({ length: BATCH }, (_, j) => dogs.put(`r${i + j}`, record)))
  await Promise.all(Array.from({ length: BATCH }, (_, j) => raw.put(`r${i + j}`, record)))
}
const readKey = () => `r${Math.floor(Math.random() * 10_000)}`
const lastCursor = store.log.lastCursor

const tasks = [
  // [name, records per iteration, fn]
  ['put, sequential keys, awaited one by one', 1, () => dogs.put(seqKey(), record)],
  ['put, random keys, awaited one by one', 1, () => dogs.put(randomKey(), record)],
  [
    `put, sequential keys, ${BATCH} concurrent`,
    BATCH,
    () => Promise.all(Array.from({ length: BATCH }, () => dogs.put(seqKey(), record))),
  ],
  [
    `put, random keys, ${BATCH} concurrent`,
    BATCH,
    () => Promise.all(Array.from({ length: BATCH }, () => dogs.put(randomKey(), record))),
  ],
  [
    `put, unlogged table, ${BATCH} concurrent`,
    BATCH,
    () => Promise.all(Array.from({ length: BATCH }, () => sessions.put(randomKey(), record))),
  ],
  [
    `put, noSync, ${BATCH} concurrent`,
    BATCH,
    () => Promise.all(Array.from({ length: BATCH }, () => fastDogs.put(randomKey(), record))),
  ],
  [
    `transaction of ${BATCH} puts`,
    BATCH,
    () =>
      store.transaction((txn) => {
        for (let i = 0; i < BATCH; i++) txn.put(dogs, randomKey(), record)
      }),
  ],
  ['get (random existing key)', 1, () => dogs.get(readKey())],
  [
    `log readSince, ${BATCH} events`,
    BATCH,
    () => {
      let n = 0
      for (const _ of store.log.readSince({
        after: Math.floor(Math.random() * (lastCursor - BATCH)),
        limit: BATCH,
      }))
        n++
      return n
    },
  ],
  ['raw lmdb-js put, awaited one by one (committed)', 1, () => raw.put(randomKey(), record)],
  [
    'raw lmdb-js put, awaited one by one (flushed)',
    1,
    async () => {
      await raw.put(randomKey(), record)
      await rawEnv.flushed
    },
  ],
  [
    `raw lmdb-js put, ${BATCH} concurrent (flushed)`,
    BATCH,
    async () => {
      await Promise.all(Array.from({ length: BATCH }, () => raw.put(randomKey(), record)))
      await rawEnv.flushed
    },
  ],
  ['raw lmdb-js get', 1, () => raw.get(readKey())],
]

const bench = new Bench({ time: Number(process.env.BENCH_TIME_MS ?? 800), warmupTime: 100, iterations: 5 })
for (const [name, , fn] of tasks) bench.add(name, fn)
await bench.run()

const perIteration = new Map(tasks.map(([name, n]) => [name, n]))
const { pack } = await import('msgpackr')
console.log(`\n${pack(record).length}-byte records (MessagePack), Node ${process.version}\n`)
console.log('| task | records/s | mean ms per iteration |')
console.log('|---|---:|---:|')
for (const task of bench.tasks) {
  const result = task.result
  const mean = result?.latency?.mean ?? result?.mean ?? 0
  const perSecond = mean > 0 ? Math.round((perIteration.get(task.name) * 1000) / mean) : 0
  console.log(`| ${task.name} | ${perSecond.toLocaleString('en-US')} | ${mean.toFixed(3)} |`)
}

await store.close()
await fast.close()
await rawEnv.close()
for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
