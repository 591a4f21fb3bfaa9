import { Packr } from 'msgpackr'
import { describe, expect, it } from 'vitest'
import { withCursor } from '../src/log-values.js'
import { RecordEncoder } from '../src/record-decode.js'
import { encodeRecord, encodeTombstone, stampRecord } from '../src/record-format.js'

// lmdb-js's options for a table database's msgpackr encoder
const options = { copyBuffers: true, mapsAsObjects: true }
const msgpackr = new Packr(options)
const fast = new RecordEncoder(options)

/** Reads `bytes` as lmdb-js hands them over: at the start of a larger, reused buffer, with the length. */
function both(bytes: Buffer): [unknown, unknown] {
  const shared = Buffer.alloc(bytes.length + 64, 0xee)
  bytes.copy(shared)
  return [msgpackr.unpack(bytes), fast.decode(shared, bytes.length)]
}

const payloads = [0, 1, 64, 255, 256, 70000].map((n) => Buffer.alloc(n, 3))
const fields: unknown[] = [
  ...payloads,
  0,
  1,
  127,
  128,
  255,
  256,
  65535,
  65536,
  2 ** 32 - 1,
  2 ** 32,
  -1,
  -32,
  -33,
  -129,
  -32769,
  -(2 ** 31),
  1.5,
  Number.NEGATIVE_INFINITY,
  1764086400123456,
  '',
  'text/plain',
  'x'.repeat(31),
  'x'.repeat(40),
  'x'.repeat(300),
  'é',
  '日本語',
  '\ud800',
  true,
  false,
  null,
  { nested: 1 },
  [1, 2],
]

function comparable(value: unknown): unknown {
  if (value instanceof Uint8Array)
    return { class: value.constructor.name, hex: Buffer.from(value).toString('hex') }
  if (Array.isArray(value)) return value.map(comparable)
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, comparable(v)]))
  return value
}

describe('RecordEncoder', () => {
  it('reads every record exactly as msgpackr does', () => {
    const records: Buffer[] = [encodeTombstone(1.25, 7)]
    for (const v of fields) {
      for (const key of ['payload', 'é', 'k'.repeat(20), '__proto__']) {
        const value = { [key]: v, qos: 1, contentType: 'application/json' }
        const record = stampRecord(encodeRecord(value), 1764086400123456.5, 42)
        records.push(Buffer.from(record), withCursor(record, 123456789))
      }
    }
    records.push(
      stampRecord(encodeRecord('a string value'), 1, 2),
      stampRecord(encodeRecord([1, { a: 2 }]), 1, 2),
    )
    for (const record of records) {
      const [expected, actual] = both(record)
      // bytes as hex: a deep comparison of 70,000-byte buffers element by element takes seconds
      expect(comparable(actual)).toStrictEqual(comparable(expected))
    }
  })

  it('copies bytes out of the shared read buffer, as msgpackr with copyBuffers', () => {
    const record = stampRecord(encodeRecord({ payload: Buffer.from([1, 2, 3]) }), 5, 6)
    const shared = Buffer.alloc(record.length + 8)
    record.copy(shared)
    const [, , value] = fast.decode(shared, record.length) as [number, number, { payload: Buffer }]
    shared.fill(0)
    expect(value.payload).toEqual(Buffer.from([1, 2, 3]))
    expect(Buffer.isBuffer(value.payload)).toBe(true)
  })

  it('refuses truncated input to msgpackr (which throws)', () => {
    const record = stampRecord(encodeRecord({ payload: Buffer.alloc(10) }), 5, 6)
    expect(() => fast.decode(record, record.length - 3)).toThrow()
  })
})
