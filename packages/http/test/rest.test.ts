import { decode, encode } from '@proj/codec'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { openTestRuntime, type TestRuntime } from './support/runtime.js'
import { startServer, type TestServer } from './support/server.js'

let rt: TestRuntime
let srv: TestServer

beforeEach(async () => {
  rt = await openTestRuntime()
  srv = await startServer({
    runtime: rt.runtime,
    maxBodySize: 4096,
    cors: { origins: ['http://allowed.example'], credentials: true },
    extraRoutes: { 'GET /health': (_req, res) => void res.end('ok') },
  })
})

afterEach(async () => {
  await srv.close()
  await rt.close()
})

const basic = `Basic ${Buffer.from('ann:secret').toString('base64')}`
const auth = { authorization: basic }
const json = { ...auth, 'content-type': 'application/json' }

async function put(path: string, value: unknown, headers: Record<string, string> = {}) {
  return fetch(`${srv.url}${path}`, {
    method: 'PUT',
    headers: { ...json, ...headers },
    body: JSON.stringify(value),
  })
}

describe('REST records', () => {
  it('creates with PUT (201), reads with GET, replaces (204) and deletes', async () => {
    const created = await put('/Dog/1', { id: '1', name: 'Rex', breed: 'lab', age: 3 })
    expect(created.status).toBe(201)
    expect(created.headers.get('location')).toBe('/Dog/1')
    const etag = created.headers.get('etag')
    expect(etag).toMatch(/^"[\d.]+"$/)

    const got = await fetch(`${srv.url}/Dog/1`, { headers: auth })
    expect(got.status).toBe(200)
    expect(got.headers.get('content-type')).toBe('application/json')
    expect(got.headers.get('etag')).toBe(etag)
    expect(await got.json()).toEqual({ id: '1', name: 'Rex', breed: 'lab', age: 3 })

    const replaced = await put('/Dog/1', { id: '1', name: 'Rex', breed: 'lab', age: 4 })
    expect(replaced.status).toBe(204)
    expect(replaced.headers.get('etag')).not.toBe(etag)

    const deleted = await fetch(`${srv.url}/Dog/1`, { method: 'DELETE', headers: auth })
    expect(deleted.status).toBe(204)
    const gone = await fetch(`${srv.url}/Dog/1`, { headers: auth })
    expect(gone.status).toBe(404)
    expect(gone.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await gone.json()).toMatchObject({ error: 'NOT_FOUND', status: 404, message: expect.any(String) })
    expect((await fetch(`${srv.url}/Dog/1`, { method: 'DELETE', headers: auth })).status).toBe(404)
  })

  it('merges with PATCH', async () => {
    await put('/Dog/2', { id: '2', name: 'Fido', breed: 'pug', age: 1 })
    const patched = await fetch(`${srv.url}/Dog/2`, {
      method: 'PATCH',
      headers: json,
      body: JSON.stringify({ age: 2 }),
    })
    expect(patched.status).toBe(204)
    expect(await (await fetch(`${srv.url}/Dog/2`, { headers: auth })).json()).toEqual({
      id: '2',
      name: 'Fido',
      breed: 'pug',
      age: 2,
    })
  })

  it('creates with POST: 201, Location and the new id', async () => {
    const res = await fetch(`${srv.url}/Dog/`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ name: 'Nova', breed: 'lab' }),
    })
    expect(res.status).toBe(201)
    const location = res.headers.get('location')!
    const id = await res.json()
    expect(location).toBe(`/Dog/${encodeURIComponent(String(id))}`)
    const got = await fetch(`${srv.url}${location}`, { headers: auth })
    expect(got.status).toBe(200)
    expect(await got.json()).toEqual({ id, name: 'Nova', breed: 'lab' })
  })

  it('matches the table name case-insensitively and ids with slashes', async () => {
    expect((await put('/Dog/with%2Fslash', { name: 'Slash' })).status).toBe(201)
    const got = await fetch(`${srv.url}/dog/with/slash`, { headers: auth })
    expect(got.status).toBe(200)
    expect(await got.json()).toEqual({ id: 'with/slash', name: 'Slash' })
  })

  it('serves raw retained payloads of unclaimed topics byte for byte with their content type', async () => {
    const ctx = { user: { username: 'ann', role: 'admin', superUser: true } }
    const payload = Buffer.from([0xde, 0xad, 0xbe, 0xef])
    await rt.runtime.publish(
      'sensors/raw',
      { payload, contentType: 'application/octet-stream', retain: true, qos: 1 },
      ctx,
    )
    const res = await fetch(`${srv.url}/sensors/raw`, { headers: auth })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/octet-stream')
    expect(Buffer.from(await res.arrayBuffer())).toEqual(payload)
  })

  it("serves a plain topic's retained bytes as bytes: text as text, JSON as JSON, binary as octet-stream", async () => {
    const ctx = { user: { username: 'ann', role: 'admin', superUser: true } }
    const retain = (topic: string, payload: Buffer, contentType?: string) =>
      rt.runtime.publish(
        topic,
        { payload, retain: true, qos: 1, ...(contentType ? { contentType } : {}) },
        ctx,
      )
    const binary = Buffer.from([0xff, 0x00, 0xfe, 0x80])
    await retain('plain/text', Buffer.from('hello, world'))
    await retain('plain/json', Buffer.from('{"t":21.5}'))
    await retain('plain/binary', binary)
    await retain('plain/typed', Buffer.from('a,b\n1,2\n'), 'text/csv')

    const text = await fetch(`${srv.url}/plain/text`, { headers: auth })
    expect(text.headers.get('content-type')).toBe('text/plain; charset=utf-8')
    expect(await text.text()).toBe('hello, world')
    const json = await fetch(`${srv.url}/plain/json`, { headers: auth })
    expect(json.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await json.json()).toEqual({ t: 21.5 })
    const bytes = await fetch(`${srv.url}/plain/binary`, { headers: auth })
    expect(bytes.headers.get('content-type')).toBe('application/octet-stream')
    expect(Buffer.from(await bytes.arrayBuffer())).toEqual(binary)
    const typed = await fetch(`${srv.url}/plain/typed`, { headers: auth })
    expect(typed.headers.get('content-type')).toBe('text/csv')
    expect(await typed.text()).toBe('a,b\n1,2\n')
  })

  it('answers ids and topics past the storage key limit with 414 (400 from a POST body), never 500', async () => {
    const long = 'x'.repeat(2500)
    for (const path of [`/Dog/${long}`, `/plain/${long}`]) {
      const res = await put(path, { name: 'Long' })
      expect(res.status).toBe(414)
      expect(await res.json()).toMatchObject({ error: 'KEY_TOO_LONG', status: 414 })
    }
    const post = await fetch(`${srv.url}/Dog/`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ id: long }),
    })
    expect(post.status).toBe(400)
    expect(await post.json()).toMatchObject({ error: 'INVALID', status: 400 })
    // reading such an id finds nothing
    expect((await fetch(`${srv.url}/Dog/${long}`, { headers: auth })).status).toBe(404)
  })

  it('answers HEAD with headers and no body', async () => {
    await put('/Dog/3', { id: '3', name: 'Bo' })
    const res = await fetch(`${srv.url}/Dog/3`, { method: 'HEAD', headers: auth })
    expect(res.status).toBe(200)
    expect(res.headers.get('etag')).toMatch(/^"/)
    expect(Number(res.headers.get('content-length'))).toBeGreaterThan(0)
    expect(await res.text()).toBe('')
  })

  it('answers unknown tables with 404 and unknown methods with 405', async () => {
    const res = await fetch(`${srv.url}/NoSuchTable/1`, { headers: auth })
    expect(res.status).toBe(404)
    expect(await res.json()).toMatchObject({ error: 'NOT_FOUND', status: 404 })
    const post = await fetch(`${srv.url}/Dog/1`, { method: 'POST', headers: json, body: '{}' })
    expect(post.status).toBe(405)
    expect(post.headers.get('allow')).toContain('PUT')
  })
})

describe('conditional requests', () => {
  it('answers If-None-Match with 304 and enforces If-Match with 412', async () => {
    const etag = (await put('/Dog/c', { id: 'c', name: 'Cy' })).headers.get('etag')!
    const notModified = await fetch(`${srv.url}/Dog/c`, { headers: { ...auth, 'if-none-match': etag } })
    expect(notModified.status).toBe(304)
    expect(notModified.headers.get('etag')).toBe(etag)
    expect((await fetch(`${srv.url}/Dog/c`, { headers: { ...auth, 'if-none-match': '"1"' } })).status).toBe(
      200,
    )

    const stale = await put('/Dog/c', { id: 'c', name: 'Stale' }, { 'if-match': '"1"' })
    expect(stale.status).toBe(412)
    expect(await stale.json()).toMatchObject({ status: 412 })
    const fresh = await put('/Dog/c', { id: 'c', name: 'Fresh' }, { 'if-match': etag })
    expect(fresh.status).toBe(204)
    // The old tag is now stale too, for PATCH and DELETE.
    const patch = await fetch(`${srv.url}/Dog/c`, {
      method: 'PATCH',
      headers: { ...json, 'if-match': etag },
      body: '{"name":"X"}',
    })
    expect(patch.status).toBe(412)
    const del = await fetch(`${srv.url}/Dog/c`, { method: 'DELETE', headers: { ...auth, 'if-match': etag } })
    expect(del.status).toBe(412)
    expect(await (await fetch(`${srv.url}/Dog/c`, { headers: auth })).json()).toMatchObject({ name: 'Fresh' })
  })

  it('supports If-None-Match: * for create-only and If-Match: * for update-only', async () => {
    expect((await put('/Dog/n', { id: 'n', name: 'N' }, { 'if-match': '*' })).status).toBe(412)
    expect((await put('/Dog/n', { id: 'n', name: 'N' }, { 'if-none-match': '*' })).status).toBe(201)
    expect((await put('/Dog/n', { id: 'n', name: 'N2' }, { 'if-none-match': '*' })).status).toBe(412)
    expect((await put('/Dog/n', { id: 'n', name: 'N3' }, { 'if-match': '*' })).status).toBe(204)
  })

  it('evaluates If-Match on GET and HEAD before If-None-Match (RFC 9110 section 13.2.2)', async () => {
    const etag = (await put('/Dog/g', { id: 'g', name: 'Gus' })).headers.get('etag')!
    const stale = await fetch(`${srv.url}/Dog/g`, { headers: { ...auth, 'if-match': '"1"' } })
    expect(stale.status).toBe(412)
    expect(await stale.json()).toMatchObject({ error: 'PRECONDITION_FAILED', status: 412 })
    const head = await fetch(`${srv.url}/Dog/g`, { method: 'HEAD', headers: { ...auth, 'if-match': '"1"' } })
    expect(head.status).toBe(412)
    const weak = await fetch(`${srv.url}/Dog/g`, { headers: { ...auth, 'if-match': `W/${etag}` } })
    expect(weak.status).toBe(412)
    const current = await fetch(`${srv.url}/Dog/g`, { headers: { ...auth, 'if-match': etag } })
    expect(current.status).toBe(200)
    expect(await current.json()).toMatchObject({ name: 'Gus' })
    const both = await fetch(`${srv.url}/Dog/g`, {
      headers: { ...auth, 'if-match': '"1"', 'if-none-match': etag },
    })
    expect(both.status).toBe(412)
    // Without the record the answer would not be 2xx, so the precondition is ignored.
    const missing = await fetch(`${srv.url}/Dog/none`, { headers: { ...auth, 'if-match': '*' } })
    expect(missing.status).toBe(404)
  })
})

describe('content negotiation', () => {
  it('does not open an event stream when Accept gives text/event-stream q=0', async () => {
    await put('/Dog/q', { id: 'q', name: 'Quill' })
    const res = await fetch(`${srv.url}/Dog/q`, {
      headers: { ...auth, accept: 'text/event-stream;q=0, application/json' },
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/json')
    expect(await res.json()).toMatchObject({ name: 'Quill' })
  })

  it('serves CBOR and MessagePack by Accept and reads them by Content-Type', async () => {
    const body = encode({ id: 'b', name: 'Bin', age: 7 }, 'application/cbor')
    const created = await fetch(`${srv.url}/Dog/b`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/cbor' },
      body,
    })
    expect(created.status).toBe(201)

    const cbor = await fetch(`${srv.url}/Dog/b`, { headers: { ...auth, accept: 'application/cbor' } })
    expect(cbor.headers.get('content-type')).toBe('application/cbor')
    expect(decode(new Uint8Array(await cbor.arrayBuffer()), 'application/cbor')).toEqual({
      id: 'b',
      name: 'Bin',
      age: 7,
    })

    const msgpack = await fetch(`${srv.url}/Dog/b`, {
      headers: { ...auth, accept: 'application/json;q=0.1, application/msgpack' },
    })
    expect(msgpack.headers.get('content-type')).toBe('application/msgpack')
    expect(decode(new Uint8Array(await msgpack.arrayBuffer()), 'application/msgpack')).toEqual({
      id: 'b',
      name: 'Bin',
      age: 7,
    })

    const viaQuery = await fetch(`${srv.url}/Dog/b?accept=msgpack`, { headers: auth })
    expect(viaQuery.headers.get('content-type')).toBe('application/msgpack')

    // the IANA-registered name: answered in MessagePack under the name asked for, and read as a body
    const vnd = await fetch(`${srv.url}/Dog/b`, { headers: { ...auth, accept: 'application/vnd.msgpack' } })
    expect(vnd.status).toBe(200)
    expect(vnd.headers.get('content-type')).toBe('application/vnd.msgpack')
    expect(decode(new Uint8Array(await vnd.arrayBuffer()), 'application/msgpack')).toEqual({
      id: 'b',
      name: 'Bin',
      age: 7,
    })
    const vndBody = await fetch(`${srv.url}/Dog/v`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/vnd.msgpack' },
      body: encode({ id: 'v', name: 'Vnd' }, 'application/msgpack'),
    })
    expect(vndBody.status).toBe(201)

    const mp = encode({ id: 'm', name: 'Mp' }, 'application/x-msgpack')
    expect(
      (
        await fetch(`${srv.url}/Dog/m`, {
          method: 'PUT',
          headers: { ...auth, 'content-type': 'application/x-msgpack' },
          body: mp,
        })
      ).status,
    ).toBe(201)
    expect(await (await fetch(`${srv.url}/Dog/m`, { headers: auth })).json()).toEqual({ id: 'm', name: 'Mp' })
  })

  it('answers 406 when no format is acceptable and 415 for unreadable bodies', async () => {
    await put('/Dog/x', { id: 'x' })
    const r406 = await fetch(`${srv.url}/Dog/x`, { headers: { ...auth, accept: 'image/png' } })
    expect(r406.status).toBe(406)
    expect(await r406.json()).toMatchObject({ error: 'NOT_ACCEPTABLE', status: 406 })
    const r415 = await fetch(`${srv.url}/Dog/x`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'text/html' },
      body: '<p>',
    })
    expect(r415.status).toBe(415)
    expect(await r415.json()).toMatchObject({ error: 'UNSUPPORTED_MEDIA_TYPE', status: 415 })
    const r400 = await fetch(`${srv.url}/Dog/x`, { method: 'PUT', headers: json, body: '{"broken' })
    expect(r400.status).toBe(400)
  })

  it('refuses bodies over maxBodySize with 413 and leaves the record alone', async () => {
    await put('/Dog/big', { id: 'big', name: 'small' })
    const res = await put('/Dog/big', { id: 'big', name: 'x'.repeat(10_000) })
    expect(res.status).toBe(413)
    expect(await res.json()).toMatchObject({ error: 'TOO_LARGE', status: 413 })
    expect(await (await fetch(`${srv.url}/Dog/big`, { headers: auth })).json()).toMatchObject({
      name: 'small',
    })
  })
})

describe('lists', () => {
  beforeEach(async () => {
    await put('/Dog/l1', { id: 'l1', name: 'A', breed: 'lab', age: 1 })
    await put('/Dog/l2', { id: 'l2', name: 'B', breed: 'pug', age: 2 })
    await put('/Dog/l3', { id: 'l3', name: 'C', breed: 'lab', age: 3 })
  })

  it('lists the table and filters by attribute equality, limit and offset', async () => {
    const all = (await (await fetch(`${srv.url}/Dog/`, { headers: auth })).json()) as { id: string }[]
    expect(all.map((d: { id: string }) => d.id).sort()).toEqual(['l1', 'l2', 'l3'])
    const labs = (await (await fetch(`${srv.url}/Dog/?breed=lab`, { headers: auth })).json()) as {
      id: string
    }[]
    expect(labs.map((d: { id: string }) => d.id).sort()).toEqual(['l1', 'l3'])
    const page = await (await fetch(`${srv.url}/Dog/?limit=1&offset=1`, { headers: auth })).json()
    expect(page).toHaveLength(1)
  })

  it('sorts and selects attributes', async () => {
    const sorted = (await (await fetch(`${srv.url}/Dog/?sort=-age`, { headers: auth })).json()) as {
      id: string
    }[]
    expect(sorted.map((d) => d.id)).toEqual(['l3', 'l2', 'l1'])
    const selected = await (await fetch(`${srv.url}/Dog/?breed=pug&select=name`, { headers: auth })).json()
    expect(selected).toEqual([{ name: 'B' }])
  })

  it('serves CSV with a header row', async () => {
    const res = await fetch(`${srv.url}/Dog/?breed=pug&select=id,name`, {
      headers: { ...auth, accept: 'text/csv' },
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/)
    expect(await res.text()).toBe('id,name\r\nl2,B\r\n')
  })

  it('treats names every object has (constructor, toString, __proto__) as ordinary attributes', async () => {
    const list = async (query: string, accept = 'application/json') => {
      const res = await fetch(`${srv.url}/Dog/${query}`, { headers: { ...auth, accept } })
      expect(res.status, `${query} ${accept}`).toBe(200)
      return accept === 'application/json'
        ? await res.json()
        : accept === 'text/csv'
          ? await res.text()
          : decode(new Uint8Array(await res.arrayBuffer()), accept)
    }
    // filters on attributes no record has: nothing matches, and no "given twice"
    expect(await list('?toString=x')).toEqual([])
    expect(await list('?constructor=x')).toEqual([])
    expect(await list('?__proto__=x')).toEqual([])
    expect(await list('?hasOwnProperty=x&valueOf=y')).toEqual([])
    // selecting them gives nothing inherited, in every format
    for (const accept of ['application/json', 'application/cbor', 'application/msgpack']) {
      expect(await list('?breed=pug&select=constructor,name,toString', accept)).toEqual([{ name: 'B' }])
    }
    expect(await list('?breed=pug&select=constructor,name', 'text/csv')).toBe('constructor,name\r\n,B\r\n')
    expect(((await list('?sort=constructor,-age')) as { id: string }[]).map((d) => d.id)).toEqual([
      'l3',
      'l2',
      'l1',
    ])
  })

  it('stores and returns a __proto__ key as an ordinary key, never as a prototype', async () => {
    const text = '{"id":"p1","__proto__":{"isAdmin":true},"__proto_":1,"nested":[{"__proto__":2}]}'
    const created = await fetch(`${srv.url}/Anything/p1`, { method: 'PUT', headers: json, body: text })
    expect(created.status).toBe(201)
    const expected = JSON.parse(text)
    const got = await fetch(`${srv.url}/Anything/p1`, { headers: auth })
    expect(JSON.parse(await got.text())).toEqual(expected)
    for (const type of ['application/cbor', 'application/msgpack']) {
      const res = await fetch(`${srv.url}/Anything/p1`, { headers: { ...auth, accept: type } })
      const value = decode(new Uint8Array(await res.arrayBuffer()), type) as Record<string, unknown>
      expect(Object.getPrototypeOf(value)).toBe(Object.prototype)
      expect(Object.hasOwn(value, '__proto__')).toBe(true)
      expect(value).toEqual(expected)
      // written in that format, it reads back the same
      const put2 = await fetch(`${srv.url}/Anything/p2`, {
        method: 'PUT',
        headers: { ...auth, 'content-type': type },
        body: encode({ ...expected, id: 'p2' }, type),
      })
      expect(put2.status).toBeLessThan(300)
      expect(await (await fetch(`${srv.url}/Anything/p2`, { headers: auth })).json()).toEqual({
        ...expected,
        id: 'p2',
      })
    }
    // a patch of __proto__ replaces that key only
    const patched = await fetch(`${srv.url}/Anything/p1`, {
      method: 'PATCH',
      headers: json,
      body: '{"__proto__":{"isAdmin":false}}',
    })
    expect(patched.status).toBe(204)
    const after = JSON.parse(await (await fetch(`${srv.url}/Anything/p1`, { headers: auth })).text())
    expect(after).toEqual(JSON.parse(text.replace('"isAdmin":true', '"isAdmin":false')))
    // lists filter and select it like any attribute
    const listed = await fetch(`${srv.url}/Anything/?__proto_=1&select=__proto__,id`, { headers: auth })
    expect(JSON.parse(await listed.text())).toEqual([
      JSON.parse('{"__proto__":{"isAdmin":false},"id":"p1"}'),
      JSON.parse('{"__proto__":{"isAdmin":true},"id":"p2"}'),
    ])
  })

  it('rejects a malformed limit with 400', async () => {
    const res = await fetch(`${srv.url}/Dog/?limit=lots`, { headers: auth })
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({ error: 'INVALID' })
  })
})

describe('authentication', () => {
  it('rejects wrong Basic credentials and bad tokens with 401', async () => {
    const wrong = `Basic ${Buffer.from('ann:nope').toString('base64')}`
    const res = await fetch(`${srv.url}/Dog/`, { headers: { authorization: wrong } })
    expect(res.status).toBe(401)
    expect(res.headers.get('www-authenticate')).toMatch(/Basic/)
    expect(await res.json()).toMatchObject({ error: 'UNAUTHORIZED', status: 401 })
    expect((await fetch(`${srv.url}/Dog/`, { headers: { authorization: 'Bearer forged' } })).status).toBe(401)
  })

  it('challenges with Basic only requests that did not come with a token or a login form', async () => {
    // A browser answers a Basic challenge to fetch() with its password dialog (a headless one hangs the
    // request): a page that logged in with a form and holds a token must get only the Bearer challenge.
    const challenge = async (path: string, init: RequestInit) => {
      const res = await fetch(`${srv.url}${path}`, init)
      expect(res.status).toBe(401)
      return res.headers.get('www-authenticate')
    }
    const wrong = `Basic ${Buffer.from('ann:nope').toString('base64')}`
    expect(await challenge('/Dog/', { headers: { authorization: wrong } })).toBe(
      'Basic realm="proj", Bearer realm="proj"',
    )
    expect(await challenge('/login', { method: 'POST', headers: { authorization: wrong } })).toMatch(/Basic/)
    expect(await challenge('/Dog/', { headers: { authorization: 'Bearer forged' } })).toBe(
      'Bearer realm="proj", error="invalid_token"',
    )
    expect(await challenge('/Dog/?access_token=forged', {})).toBe(
      'Bearer realm="proj", error="invalid_token"',
    )
    const form = {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"username":"ann","password":"x"}',
    }
    expect(await challenge('/login', form)).toBe('Bearer realm="proj"')
  })

  it('issues a token at POST /login that works as a Bearer token and as ?access_token=', async () => {
    const bad = await fetch(`${srv.url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"username":"ann","password":"x"}',
    })
    expect(bad.status).toBe(401)
    const login = await fetch(`${srv.url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'ann', password: 'secret' }),
    })
    expect(login.status).toBe(200)
    const { token, tokenType } = (await login.json()) as { token: string; tokenType: string }
    expect(tokenType).toBe('Bearer')
    expect(typeof token).toBe('string')
    await put('/Dog/t', { id: 't', name: 'Tok' })
    const res = await fetch(`${srv.url}/Dog/t`, { headers: { authorization: `Bearer ${token}` } })
    expect(res.status).toBe(200)
    expect((await fetch(`${srv.url}/Dog/t?access_token=${encodeURIComponent(token)}`)).status).toBe(200)
    const viaBasic = await fetch(`${srv.url}/login`, { method: 'POST', headers: auth })
    expect(viaBasic.status).toBe(200)
    expect((await fetch(`${srv.url}/login`)).status).toBe(405)
  })
})

describe('back-off after failed passwords', () => {
  it('answers 429 with Retry-After to Basic, /login and WebSocket once a username is backed off', async () => {
    await using limited = await backedOff()
    const wrong = { authorization: `Basic ${Buffer.from('bob:nope').toString('base64')}` }
    // two failures are free, the third starts the back-off
    for (let i = 0; i < 3; i++)
      expect((await fetch(`${limited.url}/Dog/`, { headers: wrong })).status).toBe(401)
    const res = await fetch(`${limited.url}/Dog/`, { headers: wrong })
    expect(res.status).toBe(429)
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect(await res.json()).toMatchObject({ error: 'TOO_MANY_REQUESTS', status: 429 })
    // the right password is not checked either while bob is backed off (it was never verified before)
    const right = { authorization: `Basic ${Buffer.from('bob:builder').toString('base64')}` }
    expect((await fetch(`${limited.url}/Dog/`, { headers: right })).status).toBe(429)
    const login = await fetch(`${limited.url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'bob', password: 'builder' }),
    })
    expect(login.status).toBe(429)
    expect(login.headers.get('retry-after')).not.toBeNull()
    const ws = await upgradeStatus(`${limited.wsUrl}/Dog/1`, right.authorization)
    expect(ws).toMatchObject({ status: 429 })
    expect(Number(ws.retryAfter)).toBeGreaterThanOrEqual(1)
    // ann is not affected
    expect((await fetch(`${limited.url}/Dog/`, { headers: auth })).status).toBe(200)
  })
})

async function backedOff() {
  const rt = await openTestRuntime({
    auth: { scramIterations: 4096, maxFailuresPerUser: 2, maxBackoffMs: 30_000 },
  })
  const server = await startServer({ runtime: rt.runtime })
  return {
    url: server.url,
    wsUrl: server.wsUrl,
    async [Symbol.asyncDispose]() {
      await server.close()
      await rt.close()
    },
  }
}

/** The status and Retry-After of a refused WebSocket upgrade. */
function upgradeStatus(url: string, authorization: string): Promise<{ status: number; retryAfter?: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization } })
    ws.on('unexpected-response', (_req, res) => {
      resolve({
        status: res.statusCode ?? 0,
        ...(res.headers['retry-after'] ? { retryAfter: String(res.headers['retry-after']) } : {}),
      })
      res.resume()
      ws.terminate()
    })
    ws.on('open', () => reject(new Error('upgrade accepted')))
    ws.on('error', () => {})
  })
}

describe('permissions (checked by the runtime)', () => {
  const bob = { authorization: `Basic ${Buffer.from('bob:builder').toString('base64')}` }

  it('answers 401 without credentials when anonymous access is off, and 403 for a denied role', async () => {
    await put('/Dog/p', { id: 'p', name: 'Perm' })
    const anonymous = await fetch(`${srv.url}/Dog/p`)
    expect(anonymous.status).toBe(401)
    expect(await anonymous.json()).toMatchObject({ error: 'UNAUTHORIZED', status: 401 })
    expect((await fetch(`${srv.url}/Dog/p`, { headers: bob })).status).toBe(200)
    const write = await fetch(`${srv.url}/Dog/p`, {
      method: 'PUT',
      headers: { ...bob, 'content-type': 'application/json' },
      body: '{"id":"p","name":"Bob was here"}',
    })
    expect(write.status).toBe(403)
    expect(await write.json()).toMatchObject({ error: 'FORBIDDEN', status: 403 })
    expect((await fetch(`${srv.url}/Anything/x`, { headers: bob })).status).toBe(403)
    expect(await (await fetch(`${srv.url}/Dog/p`, { headers: auth })).json()).toMatchObject({ name: 'Perm' })
  })

  it('reports schema violations as 400 with the runtime message', async () => {
    const res = await put('/Dog/v', { id: 'v', name: 'Val', age: 'three' })
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({
      error: 'INVALID',
      status: 400,
      message: expect.stringContaining('age'),
    })
  })
})

describe('CORS and extra routes', () => {
  it('answers preflights for allowed origins only', async () => {
    const ok = await fetch(`${srv.url}/Dog/1`, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://allowed.example',
        'access-control-request-method': 'PUT',
        'access-control-request-headers': 'content-type',
      },
    })
    expect(ok.status).toBe(204)
    expect(ok.headers.get('access-control-allow-origin')).toBe('http://allowed.example')
    expect(ok.headers.get('access-control-allow-methods')).toContain('PUT')
    expect(ok.headers.get('access-control-allow-headers')).toBe('content-type')
    expect(ok.headers.get('access-control-allow-credentials')).toBe('true')
    const no = await fetch(`${srv.url}/Dog/1`, {
      method: 'OPTIONS',
      headers: { origin: 'http://evil.example', 'access-control-request-method': 'PUT' },
    })
    expect(no.status).toBe(403)
  })

  it('adds CORS headers to actual responses, even errors', async () => {
    const res = await fetch(`${srv.url}/Dog/none`, { headers: { ...auth, origin: 'http://allowed.example' } })
    expect(res.status).toBe(404)
    expect(res.headers.get('access-control-allow-origin')).toBe('http://allowed.example')
    expect(res.headers.get('access-control-expose-headers')).toContain('ETag')
    const foreign = await fetch(`${srv.url}/Dog/none`, {
      headers: { ...auth, origin: 'http://evil.example' },
    })
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull()
  })

  it('adds CORS headers to event streams', async () => {
    const abort = new AbortController()
    try {
      const res = await fetch(`${srv.url}/Dog/1`, {
        headers: { ...auth, accept: 'text/event-stream', origin: 'http://allowed.example' },
        signal: abort.signal,
      })
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/)
      expect(res.headers.get('access-control-allow-origin')).toBe('http://allowed.example')
      expect(res.headers.get('access-control-allow-credentials')).toBe('true')
      expect(res.headers.get('access-control-expose-headers')).toContain('ETag')
      expect(res.headers.get('vary')).toBe('Origin')
    } finally {
      abort.abort()
    }
  })

  it('serves extra routes before records', async () => {
    const res = await fetch(`${srv.url}/health`)
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('ok')
  })
})
