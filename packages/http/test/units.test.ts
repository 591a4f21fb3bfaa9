import { describe, expect, it } from 'vitest'
import { AsyncQueue } from '../src/async-queue.js'
import { parseAuthorization } from '../src/auth.js'
import { EnvelopeEncoder, toEnvelope } from '../src/envelope.js'
import { errorBody, HttpError, statusForCode } from '../src/errors.js'
import { formatETag, parseTagList, singleVersion, strongMatch, weakMatch } from '../src/etag.js'
import { acceptFromQuery, chooseResponseType, decodeBody, toCsv } from '../src/media.js'
import { nextPageLink } from '../src/rest.js'
import { parseListQuery, parseRoute } from '../src/route.js'
import { formatSseMessage, parseLastEventId, sseFrame } from '../src/sse.js'

describe('statusForCode', () => {
  it.each([
    ['INVALID', false, 400],
    ['UNAUTHORIZED', false, 401],
    ['FORBIDDEN', false, 403],
    ['NOT_FOUND', false, 404],
    ['CONFLICT', false, 409],
    ['CONFLICT', true, 412],
    ['PRECONDITION_FAILED', false, 412],
    ['TOO_LARGE', false, 413],
    ['UNSUPPORTED_MEDIA_TYPE', false, 415],
    ['CODEC_UNSUPPORTED_MEDIA_TYPE', false, 415],
    ['CODEC_DECODE_FAILED', false, 400],
    ['RESOURCE_NOT_FOUND', false, 404],
    ['SOMETHING_ELSE', false, 500],
    [undefined, false, 500],
  ] as const)('maps %s (preconditioned %s) to %i', (code, pre, status) => {
    expect(statusForCode(code, pre)).toBe(status)
  })

  it('hides the message of unexpected errors', () => {
    expect(errorBody(new Error('secret path /etc'))).toEqual({
      error: 'INTERNAL',
      message: 'internal server error',
      status: 500,
    })
    expect(errorBody(new HttpError('NOT_FOUND', 'Dog/1 not found'))).toEqual({
      error: 'NOT_FOUND',
      message: 'Dog/1 not found',
      status: 404,
    })
  })
})

describe('etag', () => {
  it('formats a version as a strong tag and parses lists', () => {
    expect(formatETag(1732545741000123)).toBe('"1732545741000123"')
    expect(parseTagList(undefined)).toBeUndefined()
    expect(parseTagList(' * ')).toBe('*')
    expect(parseTagList('"1", W/"2" ,"3"')).toEqual([
      { weak: false, opaque: '1' },
      { weak: true, opaque: '2' },
      { weak: false, opaque: '3' },
    ])
  })

  it('compares strongly for If-Match and weakly for If-None-Match', () => {
    const list = parseTagList('W/"5", "6"')!
    expect(strongMatch(list, 5)).toBe(false)
    expect(strongMatch(list, 6)).toBe(true)
    expect(weakMatch(list, 5)).toBe(true)
    expect(weakMatch(list, 7)).toBe(false)
    expect(strongMatch('*', 1)).toBe(true)
  })

  it('extracts a single strong numeric version only', () => {
    expect(singleVersion(parseTagList('"17"')!)).toBe(17)
    expect(singleVersion(parseTagList('"17.5"')!)).toBe(17.5)
    expect(singleVersion(parseTagList('W/"17"')!)).toBeUndefined()
    expect(singleVersion(parseTagList('"1", "2"')!)).toBeUndefined()
    expect(singleVersion(parseTagList('"abc"')!)).toBeUndefined()
  })
})

describe('parseRoute', () => {
  it('splits the table from an id that may contain slashes', () => {
    expect(parseRoute('/Dog/123')).toEqual({ kind: 'record', path: 'Dog', id: '123', target: 'Dog/123' })
    expect(parseRoute('/api/things/a/b')).toEqual({
      kind: 'record',
      path: 'api',
      id: 'things/a/b',
      target: 'api/things/a/b',
    })
    expect(parseRoute('/Dog/a%2Fb%20c')).toMatchObject({ id: 'a/b c' })
  })

  it('treats /Table and /Table/ as the table and / as nothing', () => {
    expect(parseRoute('/Dog/')).toEqual({ kind: 'table', path: 'Dog', target: 'Dog/' })
    expect(parseRoute('/Dog')).toEqual({ kind: 'table', path: 'Dog', target: 'Dog/' })
    expect(parseRoute('/')).toBeUndefined()
  })

  it('rejects malformed percent-encoding as INVALID', () => {
    expect(() => parseRoute('/Dog/%E0%A4%A')).toThrow(expect.objectContaining({ code: 'INVALID' }))
  })
})

describe('parseListQuery', () => {
  it('parses the query language, keeping the list parameters and skipping what the transport reads', () => {
    const { query } = parseListQuery(
      '?breed=lab&owner=ann&limit=10&offset=5&select=name,age&sort=-age,name:asc&accept=cbor&access_token=t',
    )
    expect(query?.filter).toMatchObject({
      type: 'and',
      children: [
        { path: ['breed'], operator: 'eq', value: 'lab' },
        { path: ['owner'], operator: 'eq', value: 'ann' },
      ],
    })
    expect(query).toMatchObject({
      limit: 10,
      offset: 5,
      select: { kind: 'object', fields: [{ name: 'name' }, { name: 'age' }] },
      sort: [
        { path: ['age'], descending: true },
        { path: ['name'], descending: false },
      ],
    })
    expect(parseListQuery('').query?.filter).toBeUndefined()
    // the same attribute twice is an `and` now (price=gt=1&price=lt=9)
    expect(parseListQuery('a=1&a=2').query?.filter).toMatchObject({ type: 'and' })
  })

  it('rejects bad numbers and malformed queries with INVALID (400) naming the position', () => {
    for (const [text, position] of [
      ['limit=-1', 6],
      ['limit=abc', 6],
      ['a=1|b=2&c=3', 7],
      ['(a=1', 0],
    ] as const) {
      let error: unknown
      try {
        parseListQuery(text)
      } catch (e) {
        error = e
      }
      expect(error, text).toMatchObject({ code: 'INVALID', details: { position } })
      expect(errorBody(error), text).toMatchObject({ status: 400, details: { position } })
    }
  })
})

describe('nextPageLink', () => {
  it('keeps the query text, drops what the first page spent and the credential, and adds after', () => {
    expect(nextPageLink('/Dog/?breed=lab&limit=10&offset=5&access_token=x&after=old', 'CUR')).toBe(
      '</Dog/?breed=lab&limit=10&after=CUR>; rel="next"',
    )
    expect(nextPageLink('/Dog/?[a=1|b=2]&select(name,brand{name})&limit(20,30)&sort(-age)', 'C')).toBe(
      '</Dog/?[a=1|b=2]&select(name,brand{name})&limit(10)&sort(-age)&after=C>; rel="next"',
    )
  })
})

describe('negotiation', () => {
  it('picks JSON, CBOR or MessagePack by Accept, and CSV only for lists', () => {
    expect(chooseResponseType(undefined)).toBe('application/json')
    expect(chooseResponseType('*/*')).toBe('application/json')
    expect(chooseResponseType('application/cbor')).toBe('application/cbor')
    expect(chooseResponseType('application/json;q=0.5, application/msgpack')).toBe('application/msgpack')
    expect(chooseResponseType('application/x-msgpack')).toBe('application/x-msgpack')
    expect(chooseResponseType('application/vnd.msgpack')).toBe('application/vnd.msgpack')
    expect(chooseResponseType('application/vnd.msgpack, application/msgpack')).toBe('application/msgpack')
    expect(chooseResponseType('text/csv', { csv: true })).toBe('text/csv')
    expect(() => chooseResponseType('text/csv')).toThrow(expect.objectContaining({ code: 'NOT_ACCEPTABLE' }))
    expect(() => chooseResponseType('image/png')).toThrow(expect.objectContaining({ code: 'NOT_ACCEPTABLE' }))
  })

  it('maps ?accept= short names', () => {
    expect(acceptFromQuery('cbor')).toBe('application/cbor')
    expect(acceptFromQuery('MsgPack')).toBe('application/msgpack')
    expect(acceptFromQuery('application/json')).toBe('application/json')
    expect(acceptFromQuery(null)).toBeUndefined()
  })

  it('decodes bodies by Content-Type, sniffing JSON when there is none', () => {
    expect(decodeBody(Buffer.from('{"a":1}'), 'application/json; charset=utf-8')).toEqual({ a: 1 })
    expect(decodeBody(Buffer.from('{"a":1}'), 'application/merge-patch+json')).toEqual({ a: 1 })
    expect(decodeBody(Buffer.from('{"a":1}'), undefined)).toEqual({ a: 1 })
    expect(decodeBody(Buffer.alloc(0), undefined)).toBeUndefined()
    expect(() => decodeBody(Buffer.from([0xff, 0]), undefined)).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED_MEDIA_TYPE' }),
    )
    expect(() => decodeBody(Buffer.from('x'), 'image/png')).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED_MEDIA_TYPE' }),
    )
    expect(() => decodeBody(Buffer.from('{'), 'application/json')).toThrow(
      expect.objectContaining({ code: 'INVALID' }),
    )
    expect(() => decodeBody(Buffer.from('x'), 'not a type')).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED_MEDIA_TYPE' }),
    )
  })
})

describe('toCsv', () => {
  it('writes a header of every attribute and quotes per RFC 4180', () => {
    const csv = toCsv([
      { name: 'Rex', note: 'says "hi", twice' },
      { name: 'Fido', age: 3, tags: ['a'] },
    ])
    expect(csv).toBe('name,note,age,tags\r\nRex,"says ""hi"", twice",,\r\nFido,,3,"[""a""]"\r\n')
  })

  it('uses the selected columns when given', () => {
    expect(toCsv([{ a: 1, b: 2 }], ['b'])).toBe('b\r\n2\r\n')
  })
})

describe('SSE framing', () => {
  it('frames event, id and multi-line data', () => {
    expect(formatSseMessage({ event: 'put', id: 7, data: 'a\nb' })).toBe(
      'event: put\nid: 7\ndata: a\ndata: b\n\n',
    )
  })

  it('omits id for events that were not logged', () => {
    const event = {
      type: 'message',
      topic: 'Dog/1',
      path: 'Dog',
      id: '1',
      value: 1,
      timestamp: 5,
      cursor: 0,
      retained: false,
    } as const
    expect(Buffer.from(sseFrame(event, Buffer.from('{}'))).toString()).toBe('event: message\ndata: {}\n\n')
  })

  it('parses Last-Event-ID as a cursor, with the node that issued it when it names one', () => {
    expect(parseLastEventId('42')).toEqual({ after: 42 })
    expect(parseLastEventId(' 42 ')).toEqual({ after: 42 })
    expect(parseLastEventId('7003001.zz')).toEqual({ after: 7003001, issuer: 36 * 36 - 1 })
    expect(parseLastEventId('x')).toBeUndefined()
    expect(parseLastEventId('42.')).toBeUndefined()
    expect(parseLastEventId('42.zzzzzzz')).toBeUndefined() // beyond a node id
    expect(parseLastEventId(undefined)).toBeUndefined()
  })

  it("carries the issuing node's id (base 36) with the cursor when the runtime has one", () => {
    const event = {
      type: 'put',
      topic: 'Dog/1',
      path: 'Dog',
      id: '1',
      timestamp: 5,
      cursor: 9,
      retained: false,
    } as const
    expect(Buffer.from(sseFrame(event, Buffer.from('{}'), 71)).toString()).toBe(
      'event: put\nid: 9.1z\ndata: {}\n\n',
    )
    expect(Buffer.from(sseFrame(event, Buffer.from('{}'))).toString()).toBe('event: put\nid: 9\ndata: {}\n\n')
  })
})

describe('toEnvelope', () => {
  const base = { topic: 'Dog/1', path: 'Dog', id: '1', timestamp: 99, cursor: 3, retained: false }
  it('has type, id, value and version, and no value on delete', () => {
    expect(toEnvelope({ ...base, type: 'put', value: { a: 1 } }, true)).toEqual({
      type: 'put',
      id: '1',
      value: { a: 1 },
      version: 99,
    })
    expect(toEnvelope({ ...base, type: 'delete' }, true)).toEqual({ type: 'delete', id: '1', version: 99 })
  })

  it('makes raw bytes JSON-safe only for JSON', () => {
    const bytes = Buffer.from('{"x":1}')
    expect(
      toEnvelope({ ...base, type: 'message', value: bytes, contentType: 'application/json' }, true).value,
    ).toEqual({ x: 1 })
    expect(
      toEnvelope({ ...base, type: 'message', value: Buffer.from('hi'), contentType: 'text/plain' }, true)
        .value,
    ).toBe('hi')
    expect(
      toEnvelope(
        { ...base, type: 'message', value: Buffer.from([0xff, 1]), contentType: 'application/octet-stream' },
        true,
      ).value,
    ).toBe('/wE=')
    expect(toEnvelope({ ...base, type: 'message', value: bytes }, false).value).toBe(bytes)
  })
})

describe('EnvelopeEncoder', () => {
  const event = {
    type: 'put',
    topic: 'Dog/1',
    path: 'Dog',
    id: '1',
    value: { a: 1 },
    timestamp: 99,
    cursor: 3,
    retained: false,
  } as const

  it('frames an SSE event once and shares the bytes with every stream', () => {
    const encoder = new EnvelopeEncoder()
    const frame = encoder.encodeSse(event)
    expect(Buffer.from(frame).toString()).toBe(
      'event: put\nid: 3\ndata: {"type":"put","id":"1","version":99,"value":{"a":1}}\n\n',
    )
    expect(encoder.encodeSse(event)).toBe(frame)
    expect(encoder.encode(event, 'application/json')).toBe(encoder.encode(event, 'application/json'))
  })
})

describe('parseAuthorization', () => {
  it('reads Basic and Bearer', () => {
    expect(parseAuthorization(`Basic ${Buffer.from('ann:pa:ss').toString('base64')}`)).toEqual({
      scheme: 'basic',
      username: 'ann',
      password: 'pa:ss',
    })
    expect(parseAuthorization('bearer abc.def')).toEqual({ scheme: 'bearer', token: 'abc.def' })
    expect(parseAuthorization(undefined)).toEqual({ scheme: 'none' })
  })

  it('rejects malformed and unknown schemes', () => {
    expect(() => parseAuthorization('Basic')).toThrow(expect.objectContaining({ code: 'INVALID' }))
    expect(() => parseAuthorization(`Basic ${Buffer.from('nocolon').toString('base64')}`)).toThrow(HttpError)
    expect(() => parseAuthorization('Digest x')).toThrow(expect.objectContaining({ code: 'UNAUTHORIZED' }))
  })
})

describe('AsyncQueue', () => {
  it('delivers pushed items in order and ends', async () => {
    const q = new AsyncQueue<number>()
    q.push(1)
    const seen: number[] = []
    const done = (async () => {
      for await (const n of q) seen.push(n)
    })()
    q.push(2)
    q.end()
    q.push(3)
    await done
    expect(seen).toEqual([1, 2])
  })

  it('signals high water and drain', async () => {
    const events: string[] = []
    const q = new AsyncQueue<number>({
      highWaterMark: 4,
      onHigh: () => events.push('high'),
      onDrain: () => events.push('drain'),
    })
    for (let i = 0; i < 4; i++) q.push(i)
    expect(events).toEqual(['high'])
    const it = q[Symbol.asyncIterator]()
    await it.next()
    await it.next()
    await it.next()
    expect(events).toEqual(['high', 'drain'])
  })
})
