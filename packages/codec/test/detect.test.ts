import { detect } from '@proj/codec'
import { describe, expect, it } from 'vitest'
import { fromHex, utf8 } from './fixtures.js'

describe('detect', () => {
  const json: Array<[string, unknown]> = [
    ['{"a":1}', { a: 1 }],
    ['  [1, 2]\n', [1, 2]],
    ['"text"', 'text'],
    ['42', 42],
    ['-1.5e3', -1500],
    ['true', true],
    ['false', false],
    ['null', null],
    ['\ufeff{"bom":true}', { bom: true }],
    ['{"id":123456789012345678901}', { id: 123456789012345678901n }],
  ]
  for (const [text, value] of json) {
    it(`reads ${JSON.stringify(text)} as JSON`, () => {
      expect(detect(utf8(text))).toEqual({ mediaType: 'application/json', value })
    })
  }

  const raw: Array<[string, Uint8Array]> = [
    ['empty', new Uint8Array(0)],
    ['spaces only', utf8('   ')],
    ['plain text', utf8('hello world')],
    ['almost an object', utf8('{"a":1')],
    ['brace-delimited non-JSON', utf8('{not json}')],
    ['number-like text', utf8('12 monkeys 34')],
    ['true-ish text', utf8('trueblue')],
    ['CBOR map', fromHex('a1616101')],
    ['msgpack map', fromHex('81a16101')],
    ['invalid UTF-8 in quotes', fromHex('22ff22')],
  ]
  for (const [name, bytes] of raw) {
    it(`keeps ${name} as raw bytes, the same object`, () => {
      const result = detect(bytes)
      expect(result.mediaType).toBe('application/octet-stream')
      expect(result.value).toBe(bytes)
    })
  }
})
