// A new subscription's retained set, timed in the runtime alone (no MQTT): 100,000 retained messages
// `ret/<i>` (64-byte payloads, as S4 of ../shared/bench), then REPS subscriptions to `ret/#` with a listener
// that only counts, each timed from subscribe() to `ready`. The first is a cold delivery (what S4 measures on a
// fresh broker), the later ones warm. Build first (`pnpm build`); compare two checkouts in fresh processes:
//   for i in 1 2 3 4 5 6; do for w in <before> <after>; do taskset -c 0 node $w/packages/resource/bench/retained-delivery.mjs 3; done; done
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openRuntime } from '../dist/index.js'

const reps = Number(process.argv[2] ?? 3)
const admin = { user: { username: 'admin', role: 'admin', superUser: true } }
const dir = mkdtempSync(join(tmpdir(), 'retained-delivery-'))
const runtime = await openRuntime({ path: dir, noSync: true })
const payload = new Uint8Array(64)
for (let i = 0; i < 100_000; i += 1000) {
  const writes = []
  for (let j = i; j < i + 1000; j++)
    writes.push(runtime.publish(`ret/${j}`, { payload, retain: true, qos: 1 }, admin))
  await Promise.all(writes)
}
const times = []
for (let r = 0; r < reps; r++) {
  let received = 0
  const start = process.hrtime.bigint()
  const sub = await runtime.subscribe('ret/#', () => received++, { qos: 0 }, admin)
  await sub.ready
  times.push(Number(process.hrtime.bigint() - start) / 1e6)
  sub.close()
  if (received !== 100_000) throw new Error(`received ${received} of 100000`)
}
console.log(
  `first ${times[0].toFixed(1)} ms, best later ${Math.min(...times.slice(1)).toFixed(1)} ms, all ${times.map((t) => t.toFixed(0)).join(' ')}`,
)
await runtime.close()
rmSync(dir, { recursive: true, force: true })
