// Floor broker (a): everything in memory, like Mosquitto with `persistence false`. Bench-only; see README.md.
//   node floor-memory.mjs [PORT]     (PORT 0 or absent: any free port; prints `listening PORT`)
import { matcherFor, startFloor } from './floor-core.mjs'

const retained = new Map() // topic -> [qos][QoS 0 PUBLISH frame with the retain flag]

const store = {
  durable: false,
  setRetained(topic, value) {
    if (value === null) retained.delete(topic)
    else retained.set(topic, value)
  },
  forEachRetained(filter, fn) {
    if (!filter.includes('+') && !filter.includes('#')) {
      const v = retained.get(filter)
      if (v !== undefined) fn(v)
      return
    }
    const match = matcherFor(filter)
    for (const [topic, v] of retained) if (match(topic)) fn(v)
  },
}

const broker = await startFloor({ port: Number(process.argv[2] ?? 0), store, log: (m) => console.error(m) })
console.log(`listening ${broker.port}`)
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0))
