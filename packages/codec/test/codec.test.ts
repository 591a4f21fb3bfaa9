import { CodecError, decode, encode } from '@proj/codec'
import { describe, expect, it } from 'vitest'
import {
  BINARY,
  CBOR,
  fromHex,
  hex,
  JSON_TYPE,
  jsonModel,
  MSGPACK,
  plain,
  STRUCTURED,
  samples,
  TEXT,
  utf8,
  X_MSGPACK,
} from './fixtures.js'

// Value <-> bytes rows: `encode(value)` must give exactly `bytes`, `decode(bytes)` must give `decoded`
// (defaults to value). Bytes are hex so every row is checked byte for byte.
interface Row {
  name: string
  type: string
  value: unknown
  bytes: string
  decoded?: unknown
  /** Only check decode (the encoder picks a different, equally valid form). */
  decodeOnly?: boolean
}

const rows: Row[] = [
  // JSON
  {
    name: 'object',
    type: JSON_TYPE,
    value: { a: 1, b: [true, null] },
    bytes: hex(utf8('{"a":1,"b":[true,null]}')),
  },
  { name: 'unicode', type: JSON_TYPE, value: 'é✓', bytes: hex(utf8('"é✓"')) },
  {
    name: 'Date as ISO string',
    type: JSON_TYPE,
    value: new Date(0),
    bytes: hex(utf8('"1970-01-01T00:00:00.000Z"')),
    decoded: '1970-01-01T00:00:00.000Z',
  },
  {
    name: 'binary as base64',
    type: JSON_TYPE,
    value: { b: new Uint8Array([1, 2, 3, 250]) },
    bytes: hex(utf8('{"b":"AQID+g=="}')),
    decoded: { b: 'AQID+g==' },
  },
  {
    name: 'Buffer as base64 (not Buffer#toJSON)',
    type: JSON_TYPE,
    value: Buffer.from('hi'),
    bytes: hex(utf8('"aGk="')),
    decoded: 'aGk=',
  },
  {
    name: 'unsafe bigint as exact integer',
    type: JSON_TYPE,
    value: { n: 2n ** 64n },
    bytes: hex(utf8('{"n":18446744073709551616}')),
  },
  {
    name: 'negative unsafe bigint',
    type: JSON_TYPE,
    value: [-(2n ** 63n)],
    bytes: hex(utf8('[-9223372036854775808]')),
  },
  { name: 'safe bigint decodes as number', type: JSON_TYPE, value: 7n, bytes: hex(utf8('7')), decoded: 7 },
  {
    name: '2^53 + 1 literal keeps its digits',
    type: JSON_TYPE,
    value: 9007199254740993n,
    bytes: hex(utf8('9007199254740993')),
  },
  {
    name: 'long float stays a number',
    type: JSON_TYPE,
    value: 0.12345678901234568,
    bytes: hex(utf8('0.12345678901234568')),
  },
  {
    name: 'Map as object, Set as array',
    type: JSON_TYPE,
    value: { m: new Map([['k', 1]]), s: new Set([1, 2n]) },
    bytes: hex(utf8('{"m":{"k":1},"s":[1,2]}')),
    decoded: { m: { k: 1 }, s: [1, 2] },
  },
  {
    name: 'undefined dropped / null in arrays',
    type: JSON_TYPE,
    value: { u: undefined, a: [undefined] },
    bytes: hex(utf8('{"a":[null]}')),
    decoded: { a: [null] },
  },
  {
    name: 'undefined at top level is null',
    type: JSON_TYPE,
    value: undefined,
    bytes: hex(utf8('null')),
    decoded: null,
  },
  { name: 'NaN is null', type: JSON_TYPE, value: [Number.NaN], bytes: hex(utf8('[null]')), decoded: [null] },
  {
    name: 'BOM and whitespace are accepted',
    type: JSON_TYPE,
    value: { a: 1 },
    bytes: `efbbbf${hex(utf8(' {"a" : 1}\n'))}`,
    decodeOnly: true,
  },
  {
    name: '__proto__ stays an own key (bigint path)',
    type: JSON_TYPE,
    value: JSON.parse('{"__proto__":{"x":1},"n":12345678901234567890}'),
    bytes: hex(utf8('{"__proto__":{"x":1},"n":12345678901234567890}')),
    decoded: Object.assign(JSON.parse('{"__proto__":{"x":1}}'), { n: 12345678901234567890n }),
    decodeOnly: true,
  },
  // CBOR (RFC 8949 Appendix A vectors where they exist)
  { name: 'small int', type: CBOR, value: 10, bytes: '0a' },
  { name: 'array', type: CBOR, value: [1, [2, 3]], bytes: '8201820203' },
  { name: 'text', type: CBOR, value: 'ü', bytes: '62c3bc' },
  { name: 'byte string', type: CBOR, value: new Uint8Array([1, 2, 3, 4]), bytes: '4401020304' },
  { name: 'map (preferred serialization)', type: CBOR, value: { a: 1 }, bytes: 'a1616101' },
  { name: 'map with 16-bit length', type: CBOR, value: { a: 1 }, bytes: 'b900016161 01', decodeOnly: true },
  {
    name: 'map (RFC 8949 A)',
    type: CBOR,
    value: { a: 1, b: [2, 3] },
    bytes: 'a26161016162820203',
    decodeOnly: true,
  },
  {
    name: 'Date as tag 1',
    type: CBOR,
    value: new Date(1363896240000),
    bytes: 'c11a514b67b0',
    decodeOnly: true,
  },
  {
    name: 'Date as tag 0',
    type: CBOR,
    value: new Date('2013-03-21T20:04:00Z'),
    bytes: 'c074323031332d30332d32315432303a30343a30305a',
    decodeOnly: true,
  },
  { name: 'Date round trip form', type: CBOR, value: new Date(1500), bytes: 'c1fb3ff8000000000000' },
  { name: 'bigint as uint64', type: CBOR, value: 2n ** 64n - 1n, bytes: '1bffffffffffffffff' },
  { name: 'bignum tag 2', type: CBOR, value: 2n ** 64n, bytes: 'c249010000000000000000' },
  { name: 'negative bignum tag 3', type: CBOR, value: -(2n ** 64n) - 1n, bytes: 'c349010000000000000000' },
  { name: 'undefined', type: CBOR, value: undefined, bytes: 'f7' },
  { name: 'half float', type: CBOR, value: 1.5, bytes: 'f93e00', decodeOnly: true },
  // MessagePack (spec examples)
  {
    name: 'fixmap',
    type: MSGPACK,
    value: { compact: true, schema: 0 },
    bytes: '82a7636f6d70616374c3a6736368656d6100',
  },
  { name: 'bin 8', type: MSGPACK, value: new Uint8Array([9, 8]), bytes: 'c4020908' },
  { name: 'timestamp 32', type: MSGPACK, value: new Date(1_000_000_000_000), bytes: 'd6ff3b9aca00' },
  { name: 'timestamp 64 (ms)', type: MSGPACK, value: new Date(1), bytes: 'd7ff003d090000000000' },
  { name: 'bigint as int64', type: MSGPACK, value: -(2n ** 63n), bytes: 'd38000000000000000' },
  { name: 'bigint as uint64', type: MSGPACK, value: 2n ** 64n - 1n, bytes: 'cfffffffffffffffff' },
  {
    name: 'undefined as nil',
    type: MSGPACK,
    value: { u: undefined },
    bytes: '81a175c0',
    decoded: { u: null },
  },
  { name: 'alias x-msgpack', type: X_MSGPACK, value: [1, 'a'], bytes: '9201a161' },
  {
    name: 'uint64 from another encoder decodes as bigint',
    type: MSGPACK,
    value: 5n,
    bytes: 'cf0000000000000005',
    decodeOnly: true,
  },
  { name: 'str 8 from another encoder', type: MSGPACK, value: 'ab', bytes: 'd9026162', decodeOnly: true },
  // cbor-x and msgpackr alone would rename __proto__ to __proto_ (and lose the distinction from a real one)
  {
    name: '__proto__ is an ordinary own key, __proto_ another one',
    type: CBOR,
    value: JSON.parse('{"__proto__":{"x":1},"__proto_":2,"a":[{"__proto__":null}]}'),
    bytes: 'a3695f5f70726f746f5f5fa1617801685f5f70726f746f5f02616181a1695f5f70726f746f5f5ff6',
  },
  {
    name: '__proto__ is an ordinary own key, __proto_ another one',
    type: MSGPACK,
    value: JSON.parse('{"__proto__":{"x":1},"__proto_":2,"a":[{"__proto__":null}]}'),
    bytes: '83a95f5f70726f746f5f5f81a17801a85f5f70726f746f5f02a1619181a95f5f70726f746f5f5fc0',
  },
  // text/plain
  { name: 'utf-8 text', type: TEXT, value: 'héllo 🐶', bytes: hex(utf8('héllo 🐶')) },
  { name: 'number as text', type: TEXT, value: 12.5, bytes: hex(utf8('12.5')), decoded: '12.5' },
  {
    name: 'Date as text',
    type: TEXT,
    value: new Date(0),
    bytes: hex(utf8('1970-01-01T00:00:00.000Z')),
    decoded: '1970-01-01T00:00:00.000Z',
  },
  { name: 'null as empty text', type: TEXT, value: null, bytes: '', decoded: '' },
  {
    name: 'latin1 charset',
    type: 'text/plain; charset=ISO-8859-1',
    value: 'é',
    bytes: 'e9',
    decodeOnly: true,
  },
  { name: 'charset utf-8 param', type: 'text/plain;charset="utf-8"', value: 'é', bytes: 'c3a9' },
  // application/octet-stream
  { name: 'bytes pass through', type: BINARY, value: new Uint8Array([0, 255]), bytes: '00ff' },
  { name: 'empty bytes', type: BINARY, value: new Uint8Array(0), bytes: '' },
  { name: 'string as utf-8', type: BINARY, value: 'é', bytes: 'c3a9', decoded: new Uint8Array([0xc3, 0xa9]) },
  // Content-Type values with parameters and odd case are accepted everywhere
  {
    name: 'JSON with charset param',
    type: 'Application/JSON; charset=utf-8',
    value: [1],
    bytes: hex(utf8('[1]')),
  },
]

describe('encode', () => {
  for (const row of rows.filter((r) => !r.decodeOnly)) {
    it(`writes ${row.type} ${row.name}`, () => {
      expect(hex(encode(row.value, row.type))).toBe(row.bytes.replace(/\s+/g, ''))
    })
  }

  it('returns octet-stream input without copying', () => {
    const bytes = new Uint8Array([1, 2])
    expect(encode(bytes, BINARY)).toBe(bytes)
  })

  it('does not share bytes between consecutive encodes with the reused encoders', () => {
    for (const type of [CBOR, MSGPACK]) {
      const a = encode({ n: 1 }, type)
      const copy = hex(a)
      encode({ n: 2, other: 'x'.repeat(100) }, type)
      expect(hex(a)).toBe(copy)
    }
  })
})

describe('decode', () => {
  for (const row of rows) {
    it(`reads ${row.type} ${row.name}`, () => {
      const expected = 'decoded' in row ? row.decoded : row.value
      expect(plain(decode(fromHex(row.bytes), row.type))).toEqual(plain(expected))
    })
  }

  it('decodes binary as a copy, not a view of the input', () => {
    for (const type of [CBOR, MSGPACK]) {
      const input = encode({ b: new Uint8Array([1, 2, 3]) }, type)
      const out = decode(input, type) as { b: Uint8Array }
      input.fill(0)
      expect(Array.from(out.b)).toEqual([1, 2, 3])
    }
  })

  it('keeps a JSON integer beyond 2^53 exact as a bigint and 2^53-1 as a number', () => {
    expect(decode(utf8('[9007199254740991,9007199254740992,-9007199254740993]'), JSON_TYPE)).toEqual([
      9007199254740991,
      9007199254740992n,
      -9007199254740993n,
    ])
  })
})

describe('round trip', () => {
  for (const row of rows.filter((r) => !r.decodeOnly && !('decoded' in r))) {
    it(`${row.type} ${row.name} decodes to the value it encoded`, () => {
      expect(plain(decode(encode(row.value, row.type), row.type))).toEqual(plain(row.value))
    })
  }

  // Every ordered pair of structured formats: decode through A, re-encode through B. CBOR and
  // MessagePack keep Dates, binary and bigints; a trip through JSON applies the documented mapping.
  for (const [name, value] of Object.entries(samples)) {
    for (const a of STRUCTURED) {
      for (const b of STRUCTURED) {
        it(`${name}: ${a} -> ${b}`, () => {
          const viaA = decode(encode(value, a), a)
          const viaB = decode(encode(viaA, b), b)
          const expected = a === JSON_TYPE || b === JSON_TYPE ? jsonModel(value) : value
          expect(plain(viaB)).toEqual(plain(expected))
        })
      }
    }
  }

  it('text/plain and octet-stream round-trip their own kinds of value', () => {
    expect(decode(encode('', TEXT), TEXT)).toBe('')
    expect(decode(encode('日本 🐶', TEXT), TEXT)).toBe('日本 🐶')
    expect(Array.from(decode(encode(new Uint8Array([0, 1, 255]), BINARY), BINARY) as Uint8Array)).toEqual([
      0, 1, 255,
    ])
  })
})

// Error rows: [media type, bytes (hex) or value, expected code]
const decodeErrors: Array<[string, string, string]> = [
  [JSON_TYPE, '', 'CODEC_DECODE_FAILED'],
  [JSON_TYPE, hex(utf8('{"a":')), 'CODEC_DECODE_FAILED'],
  [JSON_TYPE, hex(utf8('{"a":1} x')), 'CODEC_DECODE_FAILED'],
  [JSON_TYPE, hex(utf8('[12345678901234567890,')), 'CODEC_DECODE_FAILED'],
  [JSON_TYPE, hex(utf8('[12345678901234567890] 1')), 'CODEC_DECODE_FAILED'],
  [JSON_TYPE, `${hex(utf8('["'))}01${hex(utf8('", 12345678901234567890]'))}`, 'CODEC_DECODE_FAILED'],
  [JSON_TYPE, '22ff22', 'CODEC_DECODE_FAILED'], // invalid UTF-8 inside a string
  [CBOR, '', 'CODEC_DECODE_FAILED'],
  [CBOR, '8201', 'CODEC_DECODE_FAILED'], // truncated array
  [CBOR, '0101', 'CODEC_DECODE_FAILED'], // trailing bytes
  [MSGPACK, '', 'CODEC_DECODE_FAILED'],
  [MSGPACK, '9201', 'CODEC_DECODE_FAILED'],
  [X_MSGPACK, '0101', 'CODEC_DECODE_FAILED'],
  [TEXT, 'ff', 'CODEC_DECODE_FAILED'], // invalid UTF-8
  ['text/plain; charset=klingon', '61', 'CODEC_UNSUPPORTED_MEDIA_TYPE'],
  ['application/xml', '', 'CODEC_UNSUPPORTED_MEDIA_TYPE'],
  ['not a type', '', 'CODEC_UNSUPPORTED_MEDIA_TYPE'],
]

const cyclic: Record<string, unknown> = {}
cyclic.self = cyclic
const encodeErrors: Array<[string, string, unknown, string]> = [
  ['cyclic', JSON_TYPE, cyclic, 'CODEC_ENCODE_FAILED'],
  ['cyclic with a bigint', JSON_TYPE, { n: 1n, cyclic }, 'CODEC_ENCODE_FAILED'],
  ['cyclic', CBOR, cyclic, 'CODEC_ENCODE_FAILED'],
  ['cyclic', MSGPACK, cyclic, 'CODEC_ENCODE_FAILED'],
  ['bigint beyond 64 bits', MSGPACK, 2n ** 64n, 'CODEC_ENCODE_FAILED'],
  ['a symbol', CBOR, Symbol('s'), 'CODEC_ENCODE_FAILED'],
  ['an object', TEXT, { a: 1 }, 'CODEC_ENCODE_FAILED'],
  ['a number', BINARY, 1, 'CODEC_ENCODE_FAILED'],
  ['anything', 'application/xml', 1, 'CODEC_UNSUPPORTED_MEDIA_TYPE'],
  ['text in latin1', 'text/plain; charset=iso-8859-1', 'é', 'CODEC_UNSUPPORTED_MEDIA_TYPE'],
]

describe('errors', () => {
  for (const [type, bytes, code] of decodeErrors) {
    it(`decode throws ${code} for ${type} ${JSON.stringify(bytes)}`, () => {
      let error: unknown
      try {
        decode(fromHex(bytes), type)
      } catch (err) {
        error = err
      }
      expect(error).toBeInstanceOf(CodecError)
      expect(error).toMatchObject({ name: 'CodecError', code, mediaType: type })
    })
  }

  for (const [what, type, value, code] of encodeErrors) {
    it(`encode throws ${code} for ${what} as ${type}`, () => {
      let error: unknown
      try {
        encode(value, type)
      } catch (err) {
        error = err
      }
      expect(error).toBeInstanceOf(CodecError)
      expect(error).toMatchObject({ code, mediaType: type })
      expect((error as Error).message).toContain(type.split(';')[0]!.toLowerCase().split(' ')[0])
    })
  }

  it('keeps the underlying error as cause', () => {
    try {
      decode(fromHex('8201'), CBOR)
      expect.unreachable()
    } catch (err) {
      expect((err as CodecError).cause).toBeInstanceOf(Error)
    }
  })
})
