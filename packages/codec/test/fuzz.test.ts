import { CodecError, decode, detect, encode } from '@proj/codec'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CBOR, JSON_TYPE, jsonModel, MSGPACK, plain, STRUCTURED, TEXT } from './fixtures.js'

const SEED = 20_240_229
const runs = { seed: SEED, numRuns: 300 }

const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n })
const leaf = fc.oneof(
  fc.string({ unit: 'grapheme' }),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Object.is(d, -0)),
  fc.boolean(),
  fc.constant(null),
  fc.date({ noInvalidDate: true, min: new Date(-8.64e14), max: new Date(8.64e14) }),
  fc.uint8Array({ maxLength: 32 }),
  int64.filter((n) => n < -(2n ** 53n) || n > 2n ** 53n),
)
const value = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('array'), tie('object')),
  array: fc.array(tie('node'), { maxLength: 6 }),
  object: fc.dictionary(
    fc.oneof(fc.string(), fc.constantFrom('__proto__', '__proto_', 'constructor', 'toString')),
    tie('node'),
    { maxKeys: 6 },
  ),
})).node

describe('fuzz (seeded)', () => {
  it('CBOR and MessagePack round-trip any value exactly', () => {
    fc.assert(
      fc.property(value, (v) => {
        for (const type of [CBOR, MSGPACK]) expect(plain(decode(encode(v, type), type))).toEqual(plain(v))
      }),
      runs,
    )
  })

  it('JSON round-trips any value to its documented JSON model', () => {
    fc.assert(
      fc.property(value, (v) => {
        expect(plain(decode(encode(v, JSON_TYPE), JSON_TYPE))).toEqual(plain(jsonModel(v)))
      }),
      runs,
    )
  })

  it('JSON agrees with JSON.stringify/JSON.parse on plain JSON values', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const bytes = encode(v, JSON_TYPE)
        expect(Buffer.from(bytes).toString('utf8')).toBe(JSON.stringify(v))
        // Same as JSON.parse, except that an integer literal beyond 2^53-1 is a bigint.
        const expected = JSON.parse(JSON.stringify(v), (_key, x) =>
          typeof x === 'number' && !Number.isSafeInteger(x) && /^-?\d+$/.test(String(x))
            ? BigInt(String(x))
            : x,
        )
        expect(decode(bytes, JSON_TYPE)).toEqual(expected)
        expect(detect(bytes)).toEqual({ mediaType: 'application/json', value: expected })
      }),
      runs,
    )
  })

  it('text/plain round-trips any well-formed string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (s) => {
        expect(decode(encode(s, TEXT), TEXT)).toBe(s)
      }),
      runs,
    )
  })

  it('decoding arbitrary bytes either succeeds or throws CodecError; detect never throws', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        for (const type of STRUCTURED) {
          try {
            decode(bytes, type)
          } catch (err) {
            expect(err).toBeInstanceOf(CodecError)
            expect((err as CodecError).code).toBe('CODEC_DECODE_FAILED')
          }
        }
        const d = detect(bytes)
        expect(['application/json', 'application/octet-stream']).toContain(d.mediaType)
      }),
      { seed: SEED, numRuns: 2000 },
    )
    // ~0.8 s alone; 2,000 runs over three decoders passed 5 s on a machine busy with other suites
  }, 30_000)
})
