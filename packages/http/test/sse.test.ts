import { waitFor } from '@proj/test-utils'
import { EventSource } from 'eventsource'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openTestRuntime, type TestRuntime } from './support/runtime.js'
import { startServer, type TestServer } from './support/server.js'

let rt: TestRuntime
let srv: TestServer
const sources: EventSource[] = []
const aborts: AbortController[] = []

beforeEach(async () => {
  rt = await openTestRuntime()
  srv = await startServer({ runtime: rt.runtime, sseHeartbeatMs: 50 })
})

afterEach(async () => {
  for (const es of sources.splice(0)) es.close()
  for (const a of aborts.splice(0)) a.abort()
  await srv.close()
  await rt.close()
})

const basic = `Basic ${Buffer.from('ann:secret').toString('base64')}`
const ctx = { user: { username: 'ann', role: 'admin', superUser: true }, transport: 'internal' as const }

interface Received {
  type: string
  lastEventId: string
  data: any
}

/** An EventSource (the `eventsource` package) that sends Basic credentials and records every event. */
async function subscribe(path: string) {
  const es = new EventSource(`${srv.url}${path}`, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, authorization: basic } }),
  })
  sources.push(es)
  const received: Received[] = []
  for (const type of ['put', 'patch', 'delete', 'message']) {
    es.addEventListener(type, (e) =>
      received.push({ type: e.type, lastEventId: e.lastEventId, data: JSON.parse(e.data) }),
    )
  }
  await new Promise<void>((resolve, reject) => {
    es.onopen = () => resolve()
    es.onerror = (e) => reject(new Error(`EventSource failed: ${e.message ?? e.code}`))
  })
  es.onerror = null
  return { es, received }
}

/** Reads a raw SSE response as text until `until` matches or the time runs out. */
async function readRaw(path: string, headers: Record<string, string>, until: (text: string) => boolean) {
  const abort = new AbortController()
  aborts.push(abort)
  const res = await fetch(`${srv.url}${path}`, {
    headers: { accept: 'text/event-stream', authorization: basic, ...headers },
    signal: abort.signal,
  })
  const reader = res.body!.getReader()
  let text = ''
  const deadline = Date.now() + 5000
  while (!until(text) && Date.now() < deadline) {
    const { value, done } = await reader.read()
    if (done) break
    text += Buffer.from(value).toString('utf8')
  }
  abort.abort()
  return { res, text }
}

describe('Server-Sent Events', () => {
  it('streams put, patch, delete and message events with names, cursors as ids and JSON envelopes', async () => {
    await rt.runtime.put('Dog/1', { id: '1', name: 'Rex' }, ctx)
    const { received } = await subscribe('/Dog/1')
    await waitFor(() => received.length >= 1, { message: 'current value' })
    expect(received[0]).toMatchObject({
      type: 'put',
      data: { type: 'put', id: '1', value: { id: '1', name: 'Rex' } },
    })

    await rt.runtime.patch('Dog/1', { name: 'Rex II' }, ctx)
    await rt.runtime.publish('Dog/1', { payload: Buffer.from('{"bark":true}'), retain: false, qos: 1 }, ctx)
    await rt.runtime.delete('Dog/1', ctx)
    await waitFor(() => received.length >= 4, { message: 'four events' })
    expect(received.map((e) => e.type)).toEqual(['put', 'patch', 'message', 'delete'])
    expect(received[1]!.data).toMatchObject({
      type: 'patch',
      id: '1',
      value: { name: 'Rex II' },
      version: expect.any(Number),
    })
    expect(received[2]!.data).toMatchObject({ type: 'message', id: '1', value: { bark: true } })
    expect(received[3]!.data).toEqual({ type: 'delete', id: '1', version: expect.any(Number) })
    const ids = received.slice(1).map((e) => Number(e.lastEventId))
    expect(ids.every((id) => id > 0)).toBe(true)
    expect([...ids].sort((a, b) => a - b)).toEqual(ids)
  })

  it('resumes after Last-Event-ID from the change log', async () => {
    const { received } = await subscribe('/Dog/')
    await rt.runtime.put('Dog/a', { id: 'a', n: 1 }, ctx)
    await waitFor(() => received.length >= 1)
    const lastId = received.at(-1)!.lastEventId
    await rt.runtime.put('Dog/a', { id: 'a', n: 2 }, ctx)
    await rt.runtime.put('Dog/b', { id: 'b', n: 3 }, ctx)

    const { res, text } = await readRaw('/Dog/', { 'last-event-id': lastId }, (t) => t.includes('"n":3'))
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/)
    expect(text).not.toContain('"n":1')
    expect(text).toMatch(/event: put\nid: \d+\ndata: \{[^\n]*"n":2/)
    expect(text).toMatch(/event: put\nid: \d+\ndata: \{[^\n]*"n":3/)
  })

  it('gives the first event (the current record) an id: a reconnect with it gets exactly the later writes', async () => {
    await rt.runtime.put('Dog/first', { id: 'first', n: 1 }, ctx)
    const lastEventIds: (string | null)[] = []
    const es = new EventSource(`${srv.url}/Dog/first`, {
      fetch: (input, init) => {
        lastEventIds.push(new Headers(init?.headers).get('last-event-id'))
        return fetch(input, { ...init, headers: { ...init?.headers, authorization: basic } })
      },
    })
    sources.push(es)
    const received: Received[] = []
    es.addEventListener('put', (e) =>
      received.push({ type: e.type, lastEventId: e.lastEventId, data: JSON.parse(e.data) }),
    )
    let opens = 0
    es.onopen = () => opens++
    await waitFor(() => received.length === 1, { message: 'the current record' })
    const firstId = received[0]!.lastEventId
    expect(received[0]!.data.value).toEqual({ id: 'first', n: 1 })
    expect(firstId).toMatch(/^\d+$/)

    // the connection drops; EventSource reconnects on its own with Last-Event-ID
    srv.server.closeAllConnections()
    await waitFor(() => opens === 2, { timeoutMs: 10_000, message: 'the reconnect' })
    expect(lastEventIds).toEqual([null, firstId])
    await rt.runtime.put('Dog/first', { id: 'first', n: 2 }, ctx)
    // a second write is the barrier: anything replayed or repeated would arrive before it
    await rt.runtime.put('Dog/first', { id: 'first', n: 3 }, ctx)
    await waitFor(() => received.length >= 3, { message: 'the two writes' })
    expect(received.map((e) => e.data.value.n)).toEqual([1, 2, 3])
    expect(Number(received[1]!.lastEventId)).toBeGreaterThan(Number(firstId))
  })

  it('gives only the last current value of a table stream an id (a resume from it is never missing records)', async () => {
    await rt.runtime.put('Dog/t1', { id: 't1' }, ctx)
    await rt.runtime.put('Dog/t2', { id: 't2' }, ctx)
    const { text } = await readRaw('/Dog/', {}, (t) => (t.match(/event: put/g) ?? []).length >= 2)
    const frames = text.split('\n\n').filter((f) => f.includes('event: put'))
    expect(frames).toHaveLength(2)
    expect(frames[0]).not.toContain('id:')
    expect(frames[1]).toMatch(/\nid: \d+\n/)
  })

  it('drops a stream whose client stops reading once the unsent bytes pass the bound', async () => {
    await srv.close()
    srv = await startServer({ runtime: rt.runtime, sseHeartbeatMs: 60_000, wsMaxQueuedBytes: 64 * 1024 })
    const { request } = await import('node:http')
    const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      request(
        `${srv.url}/Dog/slow`,
        { headers: { accept: 'text/event-stream', authorization: basic } },
        resolve,
      )
        .on('error', reject)
        .end()
    })
    expect(res.statusCode).toBe(200)
    res.pause()
    const ended = new Promise<void>((resolve) => {
      res.on('close', () => resolve())
      res.on('error', () => resolve())
    })
    const payload = Buffer.from(JSON.stringify({ pad: 'x'.repeat(16 * 1024) }))
    const total = 2000
    for (let i = 0; i < total; i++) {
      await rt.runtime.publish('Dog/slow', { payload, retain: false, qos: 0 }, ctx)
      if (i % 50 === 0) await new Promise((r) => setImmediate(r))
    }
    let bytes = 0
    res.on('data', (chunk: Buffer) => {
      bytes += chunk.length
    })
    res.resume()
    await Promise.race([
      ended,
      new Promise((_, reject) => setTimeout(() => reject(new Error('stream not dropped')), 10_000)),
    ])
    // Every event would have been ~32 MB; the server stopped at its bound plus what the kernel held.
    expect(bytes).toBeLessThan((total * payload.length) / 2)
  })

  it('ends streams when the handler closes', async () => {
    const started = Date.now()
    let closing: Promise<void> | undefined
    const { res } = await readRaw('/Dog/closing', {}, () => {
      closing ??= srv.handler.close() // first called once the response has started: the stream is open
      return false
    })
    await closing
    expect(res.status).toBe(200)
    // readRaw gives up after 5 s; ending sooner means the server ended the stream.
    expect(Date.now() - started).toBeLessThan(3000)
  })

  it('sends heartbeat comments while idle', async () => {
    const { text } = await readRaw('/Dog/quiet', {}, (t) => t.split(':\n\n').length > 2)
    expect(text.split(':\n\n').length).toBeGreaterThan(2)
  })

  it('answers refusals with a status before the stream starts', async () => {
    const bob = `Basic ${Buffer.from('bob:builder').toString('base64')}`
    const res = await fetch(`${srv.url}/Anything/1`, {
      headers: { accept: 'text/event-stream', authorization: bob },
    })
    expect(res.status).toBe(403)
    expect(await res.json()).toMatchObject({ error: 'FORBIDDEN', status: 403 })
    const bad = await fetch(`${srv.url}/Dog/1`, {
      headers: { accept: 'text/event-stream', authorization: 'Bearer nope' },
    })
    expect(bad.status).toBe(401)
    const anonymous = await fetch(`${srv.url}/Dog/1`, { headers: { accept: 'text/event-stream' } })
    expect(anonymous.status).toBe(401)
  })

  it('refuses event streams with Basic credentials or cookies from a foreign origin, before checking the password', async () => {
    await rt.runtime.put('Dog/x', { id: 'x' }, ctx)
    await using open = await startServer({ runtime: rt.runtime, cors: { origins: '*' } })
    const host = new URL(open.url).host
    const status = async (headers: Record<string, string>, server = open) => {
      const abort = new AbortController()
      aborts.push(abort)
      const res = await fetch(`${server.url}/Dog/x`, {
        headers: { accept: 'text/event-stream', ...headers },
        signal: abort.signal,
      })
      abort.abort()
      return res.status
    }
    const evil = { origin: 'https://evil.example' }
    expect(await status({ ...evil, authorization: basic })).toBe(403)
    // a wrong password is not even looked at (no back-off spent on the victim's name)
    const wrong = `Basic ${Buffer.from('ann:wrong').toString('base64')}`
    expect(await status({ ...evil, authorization: wrong })).toBe(403)
    expect(await status({ ...evil, authorization: basic, cookie: 'session=1' })).toBe(403)
    // same origin, no Origin (not a browser), or a token the page had to hold: served
    expect(await status({ origin: `http://${host}`, authorization: basic })).toBe(200)
    expect(await status({ authorization: basic })).toBe(200)
    const token = await rt.runtime.issueToken({ username: 'ann', role: 'admin', superUser: true })
    expect(await status({ ...evil, authorization: `Bearer ${token}` })).toBe(200)
    await using listed = await startServer({ runtime: rt.runtime, streamOrigins: ['https://evil.example'] })
    expect(await status({ ...evil, authorization: basic }, listed)).toBe(200)
  })

  it('follows topics no table claims, with raw payloads made JSON-safe', async () => {
    const { received } = await subscribe('/sensors/t1')
    await rt.runtime.publish(
      'sensors/t1',
      { payload: Buffer.from('21.5 C'), contentType: 'text/plain', retain: false, qos: 1 },
      ctx,
    )
    await rt.runtime.publish('sensors/t1', { payload: Buffer.from('{"c":21.5}'), retain: true, qos: 1 }, ctx)
    await waitFor(() => received.length >= 2, { message: 'two topic events' })
    expect(received[0]).toMatchObject({ type: 'message', data: { type: 'message', value: '21.5 C' } })
    expect(received[1]).toMatchObject({ type: 'put', data: { type: 'put', value: { c: 21.5 } } })
  })
})
