import type { ResourceRuntime } from '@proj/resource'
import { waitFor } from '@proj/test-utils'
import { EventSource } from 'eventsource'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { openTestRuntime, type TestRuntime } from './support/runtime.js'
import { startServer, type TestServer } from './support/server.js'

let rt: TestRuntime
let srv: TestServer
const closers: (() => unknown)[] = []

afterEach(async () => {
  for (const close of closers.splice(0)) await close()
})

async function start(options: Parameters<typeof openTestRuntime>[0] = {}) {
  rt = await openTestRuntime(options)
  srv = await startServer({ runtime: rt.runtime })
  closers.push(
    () => rt.close(),
    () => srv.close(),
  )
  return rt.runtime
}

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
const ann = basic('ann', 'secret')
const ctx = { user: { username: 'ann', role: 'admin', superUser: true }, transport: 'internal' as const }

interface Envelope {
  type: string
  id: string
  value?: any
  lastEventId?: string
}

async function openWs(path: string, authorization = ann) {
  const ws = new WebSocket(`${srv.wsUrl}${path}`, { headers: { authorization } })
  closers.unshift(() => ws.close())
  const got: Envelope[] = []
  ws.on('message', (data) => got.push(JSON.parse(String(data))))
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)))
    ws.once('error', reject)
  })
  return { ws, got }
}

async function openSse(path: string, headers: Record<string, string> = {}) {
  const es = new EventSource(`${srv.url}${path}`, {
    fetch: (input, init) =>
      fetch(input, { ...init, headers: { ...init?.headers, authorization: ann, ...headers } }),
  })
  closers.unshift(() => es.close())
  const got: Envelope[] = []
  for (const type of ['put', 'patch', 'delete', 'message', 'leave', 'reset'])
    es.addEventListener(type, (e) =>
      got.push({ ...JSON.parse(e.data || '{}'), type, lastEventId: e.lastEventId }),
    )
  await new Promise<void>((resolve, reject) => {
    es.onopen = () => resolve()
    es.onerror = (e) => reject(new Error(`EventSource failed: ${e.message ?? e.code}`))
  })
  es.onerror = null
  return { es, got }
}

describe('query subscriptions over WebSocket and SSE', () => {
  it('delivers the matching records, then enter, update, leave, delete and messages (ws and EventSource)', async () => {
    const runtime = await start()
    await runtime.put('Dog/1', { name: 'Rex', breed: 'Lab', age: 5 }, ctx)
    await runtime.put('Dog/2', { name: 'Fido', breed: 'Lab', age: 2 }, ctx)
    await runtime.put('Dog/3', { name: 'Max', breed: 'Pug', age: 9 }, ctx)
    const ws = await openWs('/Dog/?breed=Lab&age=gt=3&select(name,age)')
    const sse = await openSse('/Dog/?breed=Lab&age=gt=3&select(name,age)')
    await waitFor(() => ws.got.length === 1 && sse.got.length === 1)
    await runtime.patch('Dog/2', { age: 4 }, ctx) // enters by a patch: a put
    await runtime.patch('Dog/1', { age: 6 }, ctx) // update: the patch
    await runtime.publish('Dog/1', { payload: Buffer.from('{"bark":1}'), retain: false, qos: 1 }, ctx)
    await runtime.patch('Dog/1', { breed: 'Pug' }, ctx) // leaves
    await runtime.delete('Dog/2', ctx) // deleted while in
    await runtime.delete('Dog/3', ctx) // never in: nothing
    await runtime.put('Dog/4', { name: 'Last', breed: 'Lab', age: 7 }, ctx)
    for (const door of [ws, sse]) {
      await waitFor(() => door.got.length === 7)
      expect(door.got.map(({ type, id, value }) => ({ type, id, value }))).toEqual([
        { type: 'put', id: '1', value: { name: 'Rex', age: 5 } },
        { type: 'put', id: '2', value: { name: 'Fido', age: 4 } },
        { type: 'patch', id: '1', value: { name: 'Rex', age: 6 } },
        { type: 'message', id: '1', value: { bark: 1 } },
        { type: 'leave', id: '1', value: undefined },
        { type: 'delete', id: '2', value: undefined },
        { type: 'put', id: '4', value: { name: 'Last', age: 7 } },
      ])
    }
    // the SSE ids are change-log cursors: the first one is the snapshot's position
    expect(sse.got.every((e) => /^\d+$/.test(e.lastEventId!))).toBe(true)
  })

  it('resumes an SSE stream from Last-Event-ID with what happened while away, and resets past retention', async () => {
    const runtime = await start({ retention: { maxEvents: 3 } })
    await runtime.put('Dog/1', { name: 'In', breed: 'Lab', age: 5 }, ctx)
    const first = await openSse('/Dog/?age=gt=3')
    await waitFor(() => first.got.length === 1)
    first.es.close()
    const last = first.got[0]!.lastEventId!
    await runtime.patch('Dog/1', { age: 1 }, ctx)
    await runtime.put('Dog/2', { name: 'New', breed: 'Pug', age: 4 }, ctx)
    const resumed = await openSse('/Dog/?age=gt=3', { 'last-event-id': last })
    await waitFor(() => resumed.got.length === 2)
    expect(resumed.got.map((e) => [e.type, e.id])).toEqual([
      ['leave', '1'],
      ['put', '2'],
    ])
    resumed.es.close()
    for (let i = 10; i < 16; i++) await runtime.put(`Dog/${i}`, { name: 'Old', breed: 'Pug', age: 1 }, ctx)
    await (runtime as ResourceRuntime).storage.log.compact()
    const reset = await openSse('/Dog/?age=gt=3', { 'last-event-id': last })
    await waitFor(() => reset.got.length === 2)
    expect(reset.got.map((e) => [e.type, e.id])).toEqual([
      ['reset', ''],
      ['put', '2'],
    ])
  })

  it('answers 400 to sort() or limit() and 403 without read permission, on both doors', async () => {
    await start()
    for (const path of ['/Dog/?breed=Lab&sort(age)', '/Dog/?limit(2)']) {
      const res = await fetch(`${srv.url}${path}`, {
        headers: { accept: 'text/event-stream', authorization: ann },
      })
      expect(res.status).toBe(400)
      expect(await res.json()).toMatchObject({ details: { code: 'QUERY_UNSUPPORTED' } })
      await expect(openWs(path)).rejects.toThrow('HTTP 400')
    }
    const bob = basic('bob', 'builder')
    const res = await fetch(`${srv.url}/Anything/?a=1`, {
      headers: { accept: 'text/event-stream', authorization: bob },
    })
    expect(res.status).toBe(403)
    await expect(openWs('/Anything/?a=1', bob)).rejects.toThrow('HTTP 403')
    // the reader may read Dog: its query stream opens on both doors
    const ok = await fetch(`${srv.url}/Dog/?breed=Lab`, {
      headers: { accept: 'text/event-stream', authorization: bob },
    })
    expect(ok.status).toBe(200)
    await ok.body?.cancel()
    const { ws } = await openWs('/Dog/?breed=Lab', bob)
    expect(ws.readyState).toBe(WebSocket.OPEN)
  })
})
