import type { IncomingMessage, ServerResponse } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requestUser } from '../src/index.js'
import { openTestRuntime, type TestRuntime } from './support/runtime.js'
import { startServer, type TestServer } from './support/server.js'

let rt: TestRuntime
let srv: TestServer

// Answers with the path it saw and the user the request authenticated as.
const echo = (name: string) => async (req: IncomingMessage, res: ServerResponse) => {
  const user = await requestUser(rt.runtime, req)
  res.setHeader('content-type', 'application/json')
  res.end(JSON.stringify({ name, path: req.url, user: user?.username ?? null }))
}

beforeAll(async () => {
  rt = await openTestRuntime()
  srv = await startServer({
    runtime: rt.runtime,
    extraRoutes: { '/_admin/*': echo('admin'), 'GET /studio/*': echo('studio'), 'GET /exact': echo('exact') },
  })
})

afterAll(async () => {
  await srv.close()
  await rt.close()
})

const basic = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`

describe('extra routes', () => {
  it('a key ending in /* takes every path under its prefix, and the prefix itself', async () => {
    for (const path of ['/_admin/clients', '/_admin/clients/a%2Fb', '/_admin', '/_admin/']) {
      const res = await fetch(`${srv.url}${path}`, { method: 'DELETE' })
      expect(await res.json()).toMatchObject({ name: 'admin', path })
    }
    expect(await (await fetch(`${srv.url}/studio/assets/app.js`)).json()).toMatchObject({ name: 'studio' })
  })

  it('a method in the key limits the prefix to that method; other paths stay records', async () => {
    const post = await fetch(`${srv.url}/studio/x`, {
      method: 'POST',
      headers: { authorization: basic('ann', 'secret') },
    })
    // not the route: REST's answer to a POST on a record path
    expect(await post.json()).toMatchObject({ error: 'METHOD_NOT_ALLOWED' })
    const other = await fetch(`${srv.url}/_adminx/1`, { headers: { authorization: basic('ann', 'secret') } })
    expect(other.status).toBe(404)
  })

  it('requestUser authenticates like REST: Basic, Bearer, ?access_token=, and 401 for wrong credentials', async () => {
    const byBasic = await fetch(`${srv.url}/_admin/me`, {
      headers: { authorization: basic('bob', 'builder') },
    })
    expect(((await byBasic.json()) as Record<string, unknown>).user).toBe('bob')
    const token = await rt.runtime.issueToken({ username: 'ann', role: 'admin', superUser: true })
    const byBearer = await fetch(`${srv.url}/_admin/me`, { headers: { authorization: `Bearer ${token}` } })
    expect(((await byBearer.json()) as Record<string, unknown>).user).toBe('ann')
    const byQuery = await fetch(`${srv.url}/_admin/me?access_token=${encodeURIComponent(token)}`)
    expect(((await byQuery.json()) as Record<string, unknown>).user).toBe('ann')
    const none = await fetch(`${srv.url}/_admin/me`)
    expect(((await none.json()) as Record<string, unknown>).user).toBeNull()
    const wrong = await fetch(`${srv.url}/_admin/me`, { headers: { authorization: basic('bob', 'nope') } })
    expect(wrong.status).toBe(401)
    expect(((await wrong.json()) as Record<string, unknown>).error).toBe('UNAUTHORIZED')
  })
})
