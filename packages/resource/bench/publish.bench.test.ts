// Throughput of the QoS 0 hot path: publish -> trie match -> listener. Run: pnpm vitest run --project resource bench
import { it } from 'vitest'
import { admin, runtimeFixture } from '../test/helpers.js'

it('QoS 0 publish throughput', async () => {
  await using f = await runtimeFixture()
  const { runtime } = f
  let received = 0
  for (let i = 0; i < 100; i++) {
    const s = await runtime.subscribe(`other/${i}/#`, () => {}, { retained: false }, admin)
    void s
  }
  await runtime.subscribe('sensors/+/temp', () => received++, { retained: false }, admin)
  await runtime.subscribe('Dog/+', () => received++, { retained: false }, admin)
  const payload = new TextEncoder().encode('{"c":21.5}')
  const ctx = { ...admin, clientId: 'bench' }
  const message = { payload, retain: false, qos: 0 as const, meta: { qos: 0 as const, clientId: 'bench' } }
  for (const [label, topic] of [
    ['unclaimed topic', 'sensors/kitchen/temp'],
    ['table record', 'Dog/rex'],
  ] as const) {
    for (let round = 0; round < 2; round++) {
      received = 0
      const n = 300_000
      const start = process.hrtime.bigint()
      for (let i = 0; i < n; i++) void runtime.publish(topic, message, ctx)
      const ms = Number(process.hrtime.bigint() - start) / 1e6
      console.log(`${label}: ${Math.round((n / ms) * 1000).toLocaleString()} msg/s (${received} delivered)`)
    }
  }
}, 60_000)
