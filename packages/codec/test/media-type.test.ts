import {
  CodecError,
  isSupportedMediaType,
  MEDIA_TYPES,
  negotiate,
  normalizeMediaType,
  parseContentType,
  SUPPORTED_MEDIA_TYPES,
} from '@proj/codec'
import { describe, expect, it } from 'vitest'

describe('parseContentType', () => {
  const rows: Array<[string, string, Record<string, string>]> = [
    ['application/json', 'application/json', {}],
    ['Application/JSON', 'application/json', {}],
    ['text/plain; charset=UTF-8', 'text/plain', { charset: 'utf-8' }],
    ['text/plain;charset="utf-8"', 'text/plain', { charset: 'utf-8' }],
    ['text/plain ; Charset = utf-8'.replace(' = ', '='), 'text/plain', { charset: 'utf-8' }],
    ['a/b; x="quoted \\"value\\"; with ;"; y=Tok', 'a/b', { x: 'quoted "value"; with ;', y: 'Tok' }],
    ['a/b;;x=1;', 'a/b', { x: '1' }],
    ['a/b; x=1; x=2', 'a/b', { x: '1' }],
    ['a/b; constructor=1; tostring=2', 'a/b', { constructor: '1', tostring: '2' }],
    ['application/vnd.api+json', 'application/vnd.api+json', {}],
  ]
  for (const [header, mediaType, parameters] of rows) {
    it(`parses ${JSON.stringify(header)}`, () => {
      expect(parseContentType(header)).toEqual({ mediaType, parameters })
    })
  }

  for (const bad of [
    '',
    'json',
    'application/',
    '/json',
    'a/b c',
    'a/b; x',
    'a/b; x="open',
    'a b/c',
    'a/b,c/d',
  ]) {
    it(`rejects ${JSON.stringify(bad)} with CODEC_UNSUPPORTED_MEDIA_TYPE`, () => {
      expect(() => parseContentType(bad)).toThrow(CodecError)
      expect(() => parseContentType(bad)).toThrow(
        expect.objectContaining({ code: 'CODEC_UNSUPPORTED_MEDIA_TYPE' }),
      )
    })
  }
})

describe('normalizeMediaType', () => {
  const rows: Array<[string, string | undefined]> = [
    ['application/json', 'application/json'],
    ['APPLICATION/JSON; charset=utf-8', 'application/json'],
    ['application/cbor', 'application/cbor'],
    ['application/msgpack', 'application/msgpack'],
    ['application/x-msgpack', 'application/msgpack'],
    ['application/vnd.msgpack', 'application/msgpack'],
    ['Application/X-MsgPack;v=1', 'application/msgpack'],
    ['text/plain; charset=latin1', 'text/plain'],
    ['application/octet-stream', 'application/octet-stream'],
    ['text/html', undefined],
    ['application/json-seq', undefined],
    ['garbage', undefined],
    ['', undefined],
  ]
  for (const [input, expected] of rows) {
    it(`maps ${JSON.stringify(input)} to ${expected}`, () => {
      expect(normalizeMediaType(input)).toBe(expected)
      expect(isSupportedMediaType(input)).toBe(expected !== undefined)
    })
  }

  it('lists every supported type, JSON first, each normalizing to a canonical type', () => {
    expect(SUPPORTED_MEDIA_TYPES[0]).toBe('application/json')
    expect(SUPPORTED_MEDIA_TYPES).toContain('application/x-msgpack')
    const canonical = new Set<string>(Object.values(MEDIA_TYPES))
    for (const t of SUPPORTED_MEDIA_TYPES) expect(canonical.has(normalizeMediaType(t)!)).toBe(true)
  })
})

describe('negotiate', () => {
  const all = ['application/json', 'application/cbor', 'application/msgpack', 'text/plain']
  // [Accept, available, expected] — RFC 9110 §12.5.1
  const rows: Array<[string | undefined, readonly string[], string | undefined]> = [
    [undefined, all, 'application/json'],
    ['', all, 'application/json'],
    ['*/*', all, 'application/json'],
    ['application/cbor', all, 'application/cbor'],
    ['APPLICATION/CBOR', all, 'application/cbor'],
    ['application/cbor;q=0.5, application/msgpack', all, 'application/msgpack'],
    ['application/json;q=0.1, application/cbor;q=0.9', all, 'application/cbor'],
    ['text/*', all, 'text/plain'],
    ['application/*', all, 'application/json'],
    // more specific ranges override less specific ones
    ['application/*;q=0.9, application/json;q=0.1', all, 'application/cbor'],
    ['*/*;q=0.1, text/plain', all, 'text/plain'],
    // equal q: the exact match beats a wildcard match
    ['*/*, application/msgpack', all, 'application/msgpack'],
    // equal q and specificity: the range listed first wins
    ['application/msgpack, application/cbor', all, 'application/msgpack'],
    // q=0 excludes, even if a wildcard would accept
    ['application/json;q=0, */*', all, 'application/cbor'],
    ['application/*;q=0, text/plain;q=0', all, undefined],
    ['image/png', all, undefined],
    ['*/*;q=0', all, undefined],
    // aliases match each other; the available spelling is returned
    ['application/x-msgpack', all, 'application/msgpack'],
    ['application/vnd.msgpack', all, 'application/msgpack'],
    ['application/vnd.msgpack', ['application/json', 'application/x-msgpack'], 'application/x-msgpack'],
    ['application/msgpack', ['application/json', 'application/x-msgpack'], 'application/x-msgpack'],
    // malformed members are skipped, valid ones still count
    ['garbage, application/cbor', all, 'application/cbor'],
    ['application/json;q=2, application/cbor;q=0.5', all, 'application/cbor'],
    ['*/json', all, undefined],
    // parameters: a range's parameters make it more specific; accept-ext after q is ignored
    ['text/plain;charset=utf-8;q=0.2, text/plain;q=0.9', ['text/plain'], 'text/plain'],
    [
      'text/plain;format=flowed;q=0, text/plain',
      ['text/plain;format=fixed', 'text/plain;format=flowed'],
      'text/plain;format=fixed',
    ],
    ['application/json;q=0.5;ext=1', ['application/json'], 'application/json'],
    // parameter names that every object inherits are ordinary names
    ['application/json;constructor=x, application/cbor;q=0.5', all, 'application/json'],
    ['application/json;tostring=x;q=0.9, application/cbor;q=0.5', all, 'application/json'],
    ['application/json', [], undefined],
  ]
  for (const [accept, available, expected] of rows) {
    it(`picks ${expected} for ${JSON.stringify(accept)}`, () => {
      expect(negotiate(accept, available)).toBe(expected)
    })
  }
})
