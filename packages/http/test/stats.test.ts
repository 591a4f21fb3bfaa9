import { waitFor } from '@proj/test-utils'
import { EventSource } from 'eventsource'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { openTestRuntime, type TestRuntime } from './support/runtime.js'
import { startServer, type TestServer } from './support/server.js'

let rt: TestRuntime
let srv: TestServer

beforeEach(async () => {
  rt = await openTestRuntime()
  srv = await startServer({ runtime: rt.runtime })
})

afterEach(async () => {
  await srv.close()
  await rt.close()
})

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
const ann = basic('ann', 'secret')

function openSocket(path: string, authorization = ann): Promise<WebSocket> {
  const ws = new WebSocket(`${srv.wsUrl}${path}`, { headers: { authorization } })
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
  })
}

describe('handler.stats', () => {
  it('counts record WebSockets and SSE streams while open, and the events each is sent', async () => {
    const { stats } = srv.handler
    const es = new EventSource(`${srv.url}/Dog/`, {
      fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, authorization: ann } }),
    })
    const sseEvents: string[] = []
    es.addEventListener('put', (e) => sseEvents.push(e.data))
    await new Promise<void>((resolve, reject) => {
      es.onopen = () => resolve()
      es.onerror = (e) => reject(new Error(`EventSource failed: ${e.message ?? e.code}`))
    })
    const ws = await openSocket('/Dog/')
    const wsEvents: string[] = []
    ws.on('message', (data) => wsEvents.push(String(data)))
    expect(stats.open).toEqual({ ws: 1, sse: 1 })
    expect(stats.opened).toEqual({ ws: 1, sse: 1 })

    const put = await fetch(`${srv.url}/Dog/1`, {
      method: 'PUT',
      headers: { authorization: ann, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Rex' }),
    })
    expect(put.status).toBe(201)
    await waitFor(() => sseEvents.length === 1 && wsEvents.length === 1, {
      message: 'both streams got the put',
    })
    expect(stats.messagesIn.rest).toBe(1)
    expect(stats.messagesOut).toEqual({ ws: 1, sse: 1 })

    es.close()
    ws.close()
    await waitFor(() => stats.open.ws === 0 && stats.open.sse === 0, { message: 'both streams closed' })
    expect(stats.opened).toEqual({ ws: 1, sse: 1 })
  })

  it('counts WebSocket client messages it could decode, and forgets a socket the server closes', async () => {
    const { stats } = srv.handler
    const ws = await openSocket('/chat/room')
    const echoed = new Promise((resolve) => ws.once('message', resolve))
    ws.send(JSON.stringify({ text: 'hi' }))
    await echoed
    expect(stats.messagesIn.ws).toBe(1)
    const closed = new Promise<number>((resolve) => ws.once('close', resolve))
    ws.send('not json')
    expect(await closed).toBe(1007)
    expect(stats.messagesIn.ws).toBe(1)
    expect(stats.open.ws).toBe(0)
  })

  it('counts 401s by door, not other refusals, and no stream for a refused one', async () => {
    const { stats } = srv.handler
    const wrong = basic('ann', 'wrong')
    expect((await fetch(`${srv.url}/Dog/1`, { headers: { authorization: wrong } })).status).toBe(401)
    expect(
      (await fetch(`${srv.url}/login`, { method: 'POST', headers: { authorization: wrong } })).status,
    ).toBe(401)
    const stream = await fetch(`${srv.url}/Dog/`, {
      headers: { accept: 'text/event-stream', authorization: wrong },
    })
    expect(stream.status).toBe(401)
    await expect(openSocket('/Dog/', wrong)).rejects.toThrow(/401/)
    // bob may read Dog only: a refused write is 403, an authenticated message in all the same
    const refused = await fetch(`${srv.url}/Dog/2`, {
      method: 'PUT',
      headers: { authorization: basic('bob', 'builder'), 'content-type': 'application/json' },
      body: '{}',
    })
    expect(refused.status).toBe(403)
    expect(stats.authFailures).toEqual({ rest: 1, login: 1, ws: 1, sse: 1 })
    expect(stats.messagesIn.rest).toBe(1)
    expect(stats.open).toEqual({ ws: 0, sse: 0 })
    expect(stats.opened).toEqual({ ws: 0, sse: 0 })
  })
})
