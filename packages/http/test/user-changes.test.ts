import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { openTestRuntime, type TestRuntime } from './support/runtime.js'
import { startServer, type TestServer } from './support/server.js'

let rt: TestRuntime
let srv: TestServer
const cleanup: (() => void)[] = []

beforeEach(async () => {
  rt = await openTestRuntime()
  srv = await startServer({ runtime: rt.runtime })
  await rt.runtime.put(
    'Dog/1',
    { name: 'Rex' },
    { user: { username: 'ann', role: 'admin', superUser: true } },
  )
})

afterEach(async () => {
  for (const f of cleanup.splice(0)) f()
  await srv.close()
  await rt.close()
})

const bobBasic = `Basic ${Buffer.from('bob:builder').toString('base64')}`

async function token(): Promise<string> {
  const res = await fetch(`${srv.url}/login`, { method: 'POST', headers: { authorization: bobBasic } })
  expect(res.status).toBe(200)
  return ((await res.json()) as { token: string }).token
}

/** A record WebSocket; `closed` resolves with its close code once the server closes it. */
async function socket(authorization: string): Promise<{ ws: WebSocket; closed: Promise<number> }> {
  const ws = new WebSocket(`${srv.wsUrl}/Dog/1`, { headers: { authorization } })
  cleanup.push(() => ws.terminate())
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  const first = new Promise((resolve) => ws.once('message', resolve)) // the current value
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
  })
  await first
  return { ws, closed }
}

/** An SSE stream; `ended` resolves once the server ends it. */
async function eventStream(authorization: string): Promise<{ ended: Promise<void> }> {
  const abort = new AbortController()
  cleanup.push(() => abort.abort())
  const res = await fetch(`${srv.url}/Dog/1`, {
    headers: { accept: 'text/event-stream', authorization },
    signal: abort.signal,
  })
  expect(res.status).toBe(200)
  const reader = res.body!.getReader()
  await reader.read() // the current value
  const ended = (async () => {
    for (;;) if ((await reader.read()).done) return
  })()
  return { ended: ended.catch(() => {}) }
}

describe('user changes close the streams they affect', () => {
  it('closes bearer-token streams after a password change, and every stream of a deleted user', async () => {
    const bearer = `Bearer ${await token()}`
    const viaToken = await socket(bearer)
    const viaPassword = await socket(bobBasic)
    const sseToken = await eventStream(bearer)
    const ssePassword = await eventStream(bobBasic)
    await rt.runtime.users.setPassword('bob', 'new-builder')
    expect(await viaToken.closed).toBe(1008)
    await sseToken.ended
    expect((await fetch(`${srv.url}/Dog/1`, { headers: { authorization: bearer } })).status).toBe(401)
    // the password streams stay: a change reaches them
    const next = new Promise((resolve) => viaPassword.ws.once('message', resolve))
    await rt.runtime.patch(
      'Dog/1',
      { name: 'Max' },
      { user: { username: 'ann', role: 'admin', superUser: true } },
    )
    await next
    expect(viaPassword.ws.readyState).toBe(WebSocket.OPEN)
    await rt.runtime.users.delete('bob')
    expect(await viaPassword.closed).toBe(1008)
    await ssePassword.ended
  })

  it('closes the streams of a user whose role changed, not those of others', async () => {
    const bob = await socket(bobBasic)
    const ann = await socket(`Basic ${Buffer.from('ann:secret').toString('base64')}`)
    await rt.runtime.users.update('bob', { role: 'user' })
    expect(await bob.closed).toBe(1008)
    expect(ann.ws.readyState).toBe(WebSocket.OPEN)
  })
})
