import { Packr } from 'msgpackr'
import { describe, expect, it } from 'vitest'
import { inlineLogValue, referringEntry, withCursor } from '../src/log-values.js'
import {
  encodeLogEntry,
  encodeRecord,
  encodeValue,
  stampRecord,
  VALUE_IN_RECORD,
} from '../src/record-format.js'

// The hand-written encoders (flat objects, log entries) must read back exactly like msgpackr's output.
const reader = new Packr({ mapsAsObjects: true, useRecords: false })
const numbers = [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, -1, -32, -33, -129]
const more = [-32769, -(2 ** 31), -(2 ** 31) - 1, 1.5, -1.5, Infinity, 2 ** 53, 1764086400123456]
const strings = ['', 'a', 'x'.repeat(31), 'x'.repeat(32), 'x'.repeat(65), 'x'.repeat(256), 'x'.repeat(70000)]
const unicode = ['é', 'é'.repeat(16), 'é'.repeat(200), '日本語', '😀']
// msgpackr itself does not read these back as written (short ones as WTF-8, long ones as U+FFFD)
const loneSurrogates = ['\ud800', 'a\udc00b', '\ud83d'.repeat(70)]
const bytes = [0, 1, 64, 65, 255, 256, 65536].map((n) => Buffer.alloc(n, 7))
const values: unknown[] = [...numbers, ...more, ...strings, ...unicode, ...bytes, true, false, null]

describe('record format', () => {
  // CPU-bound (about 2 s alone): a longer timeout for a busy machine
  it('packs flat objects (values and records) that read back as written', () => {
    for (const v of values) {
      for (const key of ['k', 'é', 'x'.repeat(40)]) {
        const value = { [key]: v, other: 1 }
        expect(reader.unpack(encodeValue(value))).toEqual(value)
        expect(reader.unpack(stampRecord(encodeRecord(value), 1.25, 9))).toEqual([1.25, 9, value])
      }
    }
    const wide = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`f${i}`, i * 1000]))
    expect(reader.unpack(encodeValue(wide))).toEqual(wide)
    expect(reader.unpack(encodeValue(new Uint8Array([1, 2])))).toEqual(Buffer.from([1, 2]))
    expect(reader.unpack(encodeValue({ u8: new Uint8Array([1, 2]) }))).toEqual({ u8: Buffer.from([1, 2]) })
    expect(reader.unpack(encodeValue({ nested: { a: [1] }, at: 1 }))).toEqual({ nested: { a: [1] }, at: 1 })
    expect(Number.isNaN((reader.unpack(encodeValue({ n: Number.NaN })) as { n: number }).n)).toBe(true)
  }, 30_000)

  it('packs flat objects byte for byte as msgpackr does', () => {
    const packr = new Packr({ useRecords: false })
    const flat: object[] = [
      {},
      Object.create(null),
      { k: -0 },
      { k: Number.NaN },
      { k: 2 ** 32 + 1 },
      { constructor: 'x' },
    ]
    for (const v of [...values, ...loneSurrogates]) flat.push({ k: v, other: 1 })
    for (const k of loneSurrogates) flat.push({ [k]: 1 })
    flat.push(Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`f${i}`, i])))
    for (const value of flat) {
      expect(encodeValue(value).toString('hex')).toBe(packr.pack(value).toString('hex'))
      const record = stampRecord(encodeRecord(value), 1.25, 4000000000)
      expect(record.toString('hex')).toBe(packr.pack([1.25, 4000000000, value]).toString('hex'))
    }
  })

  it('keeps earlier encodings intact while packing more', () => {
    const encoded = Array.from({ length: 5000 }, (_, i) => encodeValue({ i, s: `v${i}` }))
    for (const [i, b] of encoded.entries()) expect(reader.unpack(b)).toEqual({ i, s: `v${i}` })
  })

  it('writes log entries with lone surrogates byte for byte as msgpackr does', () => {
    const packr = new Packr({ useRecords: false })
    for (const s of loneSurrogates) {
      const entry = encodeLogEntry(0, s, s, 1.5, 4000000000, s, undefined, undefined, undefined)
      const header = [0, s, s, 1.5, 4000000000, s]
      expect(entry.toString('hex')).toBe(packr.pack([header, null, null, null]).toString('hex'))
    }
  })

  it('writes log entries that read back as written', () => {
    const meta = encodeValue({ qos: 1, clientId: 'c' })
    const value = encodeValue({ a: 1 })
    for (const id of ['a', 'é'.repeat(20), 'x'.repeat(300), 5, 1.5, ['x', 2]]) {
      for (const table of ['t', 'é'.repeat(100)]) {
        for (const user of [undefined, 'bob', 'é'.repeat(17)]) {
          const entry = encodeLogEntry(
            3,
            table,
            id,
            1764086400123456,
            4000000000,
            user,
            value,
            undefined,
            meta,
          )
          const header = [3, table, id, 1764086400123456, 4000000000, user ?? null]
          expect(entry.toString('hex')).toBe(
            new Packr({ useRecords: false })
              .pack([header, { a: 1 }, null, { qos: 1, clientId: 'c' }])
              .toString('hex'),
          )
          expect(reader.unpack(entry)).toEqual([
            [3, table, id, 1764086400123456, 4000000000, user ?? null],
            { a: 1 },
            null,
            { qos: 1, clientId: 'c' },
          ])
        }
      }
    }
  })

  it('gives an entry that refers to its record the value, byte for byte as if written inline', () => {
    const value = encodeValue({ payload: Buffer.alloc(64, 1), contentType: 'x' })
    const meta = encodeValue({ qos: 1, clientId: 'c' })
    const patch = encodeValue({ b: 2 })
    const previous = Buffer.from([0x91, 0x01])
    const ids = [
      'a',
      'é'.repeat(20),
      'x'.repeat(300),
      'x'.repeat(70000),
      0,
      5,
      -40000,
      1.5,
      2 ** 40,
      ['x', 2, 'y'],
    ]
    for (const id of ids)
      for (const table of ['t', 'x'.repeat(40)])
        for (const user of [undefined, 'bob', 'é'.repeat(17)])
          for (const [kind, p, prev] of [
            [0, undefined, undefined],
            [1, patch, previous],
          ] as const) {
            const ts = 1764086400123456
            const ref = encodeLogEntry(
              kind | VALUE_IN_RECORD,
              table,
              id,
              ts,
              4000000000,
              user,
              undefined,
              p,
              meta,
              prev,
            )
            const inline = encodeLogEntry(kind, table, id, ts, 4000000000, user, value, p, meta, prev)
            expect(inlineLogValue(ref, value)?.toString('hex')).toBe(inline.toString('hex'))
          }
    expect(
      inlineLogValue(encodeLogEntry(0, 't', 'a', 1.5, 1, undefined, value, undefined, meta), value),
    ).toBe(undefined)
  })

  it('reads the cursor and value back from a record that carries its entry cursor', () => {
    const value = { payload: Buffer.alloc(64, 1) }
    const record = withCursor(stampRecord(encodeRecord(value), 1.25, 9), 123456789012)
    expect(reader.unpack(record)).toEqual([1.25, 9, value, 123456789012])
    const found = referringEntry(record)
    expect(found?.cursor).toBe(123456789012)
    expect(reader.unpack(found!.value)).toEqual(value)
    expect(referringEntry(stampRecord(encodeRecord(value), 1.25, 9))).toBeUndefined()
    expect(referringEntry(undefined)).toBeUndefined()
  })
})
