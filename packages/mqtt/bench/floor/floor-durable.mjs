// Floor broker (b): floor-memory plus LMDB. Every QoS 1 PUBLISH (the topic's record: key = topic) and
// every retained message (put, or remove for an empty payload) is written with lmdb-js's asynchronous
// put, which batches everything queued while a commit is in flight into the next transaction; the
// PUBACK goes out only when that transaction is flushed to disk (overlappingSync: the fsync runs after
// the commit, off the main thread). Retained messages live only in LMDB (no second copy in memory) and
// are read back with a range scan on SUBSCRIBE. Messages are forwarded to subscribers at once; only the
// acknowledgement waits for the disk. Bench-only; see README.md.
//   node floor-durable.mjs [PORT] [DIR]   (DIR absent: a temporary directory, removed at exit)
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { open } from 'lmdb'
import { literalPrefix, matcherFor, startFloor } from './floor-core.mjs'

const ownDir = process.argv[3] === undefined
const dir = ownDir ? mkdtempSync(join(tmpdir(), 'floor-durable-')) : process.argv[3]
const env = open({
  path: dir,
  maxDbs: 4,
  overlappingSync: true,
  separateFlushed: true,
  mapSize: 2 ** 31, // address space only: one map for the file's life
})
const messages = env.openDB('messages', { encoding: 'binary' })
const retained = env.openDB('retained', { encoding: 'binary' })

let ack = null
let txn = null // the commit promise of the transaction being filled
let waiting = null // { conns, pids } to acknowledge when txn is on disk

const track = (p) => {
  if (p === txn) return
  txn = p
  const batch = (waiting = { conns: [], pids: [] })
  ;(p.flushed ?? p).then(
    () => {
      const { conns, pids } = batch
      for (let k = 0; k < conns.length; k++) ack(conns[k], pids[k])
    },
    (error) => {
      console.error('commit failed', error)
      process.exit(1)
    },
  )
}

const store = {
  durable: true,
  init(fn) {
    ack = fn
  },
  persist(topic, b, payStart, end) {
    track(messages.put(topic, b.subarray(payStart, end)))
  },
  ackWhenDurable(conn, pid) {
    waiting.conns.push(conn)
    waiting.pids.push(pid)
  },
  setRetained(topic, value) {
    track(value === null ? retained.remove(topic) : retained.put(topic, value))
  },
  forEachRetained(filter, fn) {
    if (!filter.includes('+') && !filter.includes('#')) {
      const v = retained.get(filter)
      if (v !== undefined) fn(v)
      return
    }
    const match = matcherFor(filter)
    const lit = literalPrefix(filter)
    for (const { key, value } of retained.getRange(lit === '' ? {} : { start: lit })) {
      if (!key.startsWith(lit)) break
      if (match(key)) fn(value)
    }
  },
}

const broker = await startFloor({ port: Number(process.argv[2] ?? 0), store, log: (m) => console.error(m) })
console.log(`listening ${broker.port}`)
// A temporary directory goes at once (nothing in it is needed again); a given one keeps what was committed.
const stop = () => {
  if (ownDir) rmSync(dir, { recursive: true, force: true })
  process.exit(0)
}
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, stop)
