// Encode/decode of a typical ~200-byte record per media type. Run: pnpm bench (after pnpm build).
import { Bench } from 'tinybench'
import { decode, encode } from '../dist/index.js'

const record = {
  id: 'dog-12345',
  name: 'Rex the Third',
  breed: 'Border Collie',
  age: 7,
  weightKg: 18.4,
  vaccinated: true,
  owner: { id: 'user-987', name: 'Ada Lovelace' },
  tags: ['friendly', 'herding'],
  updatedAt: '2024-02-29T12:30:45.123Z',
}

const types = ['application/json', 'application/cbor', 'application/msgpack']
const bench = new Bench({ time: Number(process.env.BENCH_TIME_MS ?? 1000), warmupTime: 200 })
const sizes = {}
for (const type of types) {
  const bytes = encode(record, type)
  sizes[type] = bytes.length
  bench.add(`encode ${type}`, () => {
    encode(record, type)
  })
  bench.add(`decode ${type}`, () => {
    decode(bytes, type)
  })
}
bench.add('encode JSON.stringify (baseline)', () => {
  Buffer.from(JSON.stringify(record))
})
const jsonBytes = Buffer.from(JSON.stringify(record))
bench.add('decode JSON.parse (baseline)', () => {
  JSON.parse(jsonBytes.toString())
})

await bench.run()
console.log(
  `record size: ${Object.entries(sizes)
    .map(([t, n]) => `${t} ${n} B`)
    .join(', ')}`,
)
console.log('| task | ops/s | mean (µs) |\n|---|---:|---:|')
for (const task of bench.tasks) {
  const r = task.result
  if (r === undefined || !('throughput' in r)) continue
  console.log(
    `| ${task.name} | ${Math.round(r.throughput.mean).toLocaleString('en-US')} | ${(r.latency.mean * 1000).toFixed(2)} |`,
  )
}
