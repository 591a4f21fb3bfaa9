import { once } from 'node:events'
import { waitFor } from '@proj/test-utils'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { basic } from './helpers/clients.js'
import { READER, type SecurityServer, startSecurityServer, USERS, WRITER } from './helpers/security-server.js'
import { runCli } from './helpers/server-process.js'

/**
 * Accounts across every door (issue #12): a session belongs to the user who made it; a new password
 * revokes tokens and the streams opened with them; a deleted user's connections close and its tokens
 * stay dead even when the name comes back; failed passwords back off. Each refusal leaves the data alone.
 */
let s: SecurityServer
let before: Awaited<ReturnType<SecurityServer['snapshot']>>

beforeAll(async () => {
  s = await startSecurityServer()
  before = await s.snapshot()
})

afterAll(async () => {
  await s?.close()
})

describe.each(['tcp', 'ws'] as const)('durable sessions over MQTT %s', (door) => {
  it('are resumed only by their owner; other users and anonymous are refused and change nothing', async () => {
    const clientId = `durable-${door}`
    const durable = { clientId, clean: false, properties: { sessionExpiryInterval: 3600 } }
    const first = await s.connect('writer', door, durable)
    await first.client.subscribeAsync('Dog/#', { qos: 1 })
    await first.client.endAsync()
    for (const who of USERS.filter((u) => u !== 'writer')) {
      const refused = await s.connect(who, door, durable).catch((e) => e)
      expect(refused, who).toMatchObject({ code: 0x85 })
      const v4 = await s.connect(who, door, { clientId, clean: false, protocolVersion: 4 }).catch((e) => e)
      expect(v4, who).toMatchObject({ code: 2 })
    }
    // a message while the owner is away waits in its session
    const admin = (await s.connect('admin', 'tcp')).client
    await admin.publishAsync('Dog/1', `{"while":"away-${door}"}`, { qos: 1 })
    await admin.endAsync()
    const back = await s.connect('writer', door, durable)
    expect(back.connack.sessionPresent).toBe(true)
    await waitFor(() => back.messages.length > 0, { message: 'the message kept in the session' })
    expect(back.messages[0]!.topic).toBe('Dog/1')
    expect(back.messages[0]!.payload).toContain(`away-${door}`)
    // while the owner is connected, another user's attempt does not take the connection over
    expect(await s.connect('reader', door, durable).catch((e) => e)).toMatchObject({ code: 0x85 })
    await back.client.publishAsync('public/still-here', 'x', { qos: 1 })
    expect(back.client.connected).toBe(true)
    await back.client.endAsync()
    expect(await s.snapshot()).toEqual(before)
  })
})

async function login(username: string, password: string): Promise<string> {
  const res = await s.rest('anonymous', 'POST', '/login', { username, password })
  expect(res.status).toBe(200)
  return JSON.parse(res.text).token
}

/** An event stream opened with a token; resolves `ended` when the server closes it. */
async function tokenStream(token: string) {
  const abort = new AbortController()
  const res = await fetch(`${s.http}/Dog/1?access_token=${encodeURIComponent(token)}`, {
    headers: { accept: 'text/event-stream' },
    signal: abort.signal,
  })
  expect(res.status).toBe(200)
  const reader = res.body!.getReader()
  const ended = (async () => {
    try {
      while (!(await reader.read()).done) {}
    } catch {}
  })()
  return { ended, abort: () => abort.abort() }
}

describe('tokens and connections after account changes', () => {
  it('a new password revokes the old tokens on REST, WebSocket and SSE, and closes their streams', async () => {
    const token = await login(READER.username, READER.password)
    expect((await s.rest({ token }, 'GET', '/Dog/1')).status).toBe(200)
    const stream = await tokenStream(token)
    const ws = new WebSocket(`${s.ws}/Dog/1?access_token=${encodeURIComponent(token)}`)
    await once(ws, 'open')
    const wsClosed = once(ws, 'close')
    const changed = await s.rest('admin', 'PUT', `/_admin/users/${READER.username}/password`, {
      password: 'reader-new',
    })
    expect(changed.status).toBe(204)
    await stream.ended
    await wsClosed
    expect((await s.rest({ token }, 'GET', '/Dog/1')).status).toBe(401)
    expect((await s.rest({ token }, 'PUT', '/Dog/1', { name: 'pwned' })).status).toBe(401)
    expect(await s.upgrade(`/Dog/1?access_token=${encodeURIComponent(token)}`)).toBe(401)
    expect(await s.sse(`/Dog/1?access_token=${encodeURIComponent(token)}`)).toBe(401)
    const old = await s.rest('anonymous', 'GET', '/Dog/1', undefined, {
      authorization: basic(READER.username, READER.password),
    })
    expect(old.status).toBe(401)
    const fresh = await s.rest('anonymous', 'GET', '/Dog/1', undefined, {
      authorization: basic(READER.username, 'reader-new'),
    })
    expect(fresh.status).toBe(200)
    expect(await s.snapshot()).toEqual(before)
  })

  it('a deleted user loses its MQTT connections and tokens, also when the name is added again', async () => {
    const token = await login(WRITER.username, WRITER.password)
    const tcp = (await s.connect('writer', 'tcp', { clientId: 'doomed-tcp' })).client
    const ws = (await s.connect('writer', 'ws', { clientId: 'doomed-ws' })).client
    const closed = [tcp, ws].map((c) => new Promise<void>((resolve) => c.once('close', () => resolve())))
    const deleted = await runCli(['user', 'delete', WRITER.username, '--root', s.root])
    expect(deleted.code, deleted.stderr).toBe(0)
    await Promise.all(closed) // the server notices the other process's delete and disconnects
    expect((await s.rest({ token }, 'PUT', '/Dog/1', { name: 'pwned' })).status).toBe(401)
    expect(await s.connect('writer', 'tcp').catch((e) => e)).toMatchObject({ code: 0x86 })
    const again = await s.rest('admin', 'POST', '/_admin/users', { ...WRITER, role: 'writer' })
    expect(again.status).toBe(201)
    expect((await s.rest({ token }, 'GET', '/Dog/1')).status).toBe(401)
    expect((await s.rest({ token }, 'PUT', '/Dog/1', { name: 'pwned' })).status).toBe(401)
    expect((await s.rest('writer', 'GET', '/Dog/1')).status).toBe(200)
    expect(await s.snapshot()).toEqual(before)
  })
})

describe('back-off after failed passwords', () => {
  it('refuses a guessed account on every door, even with the right password, without a write', async () => {
    const victim = { username: 'victim', password: 'victim-pw' }
    expect((await s.rest('admin', 'POST', '/_admin/users', { ...victim, role: 'writer' })).status).toBe(201)
    const as = (password: string) => ({ authorization: basic(victim.username, password) })
    // auth.backoff.maxFailuresPerUser (5) failures are answered 401; the next one starts the back-off
    const statuses = []
    for (let i = 0; i < 6; i++) {
      statuses.push((await s.rest('anonymous', 'GET', '/Dog/1', undefined, as(`guess-${i}`))).status)
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 401])
    expect((await s.rest('anonymous', 'GET', '/Dog/1', undefined, as('guess-7'))).status).toBe(429)
    const refused = await s.rest('anonymous', 'PUT', '/Dog/1', { name: 'pwned' }, as(victim.password))
    expect(refused.status).toBe(429)
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(await s.upgrade('/Dog/1', as(victim.password))).toBe(429)
    expect(await s.sse('/Dog/1', as(victim.password))).toBe(429)
    const mqtt = (protocolVersion: 4 | 5, door: 'tcp' | 'ws') =>
      s
        .connect('anonymous', door, {
          ...victim,
          protocolVersion,
          clientId: `victim-${protocolVersion}-${door}`,
        })
        .catch((e) => e)
    expect(await mqtt(5, 'tcp')).toMatchObject({ code: 0x89 })
    expect(await mqtt(4, 'tcp')).toMatchObject({ code: 3 })
    expect(await mqtt(5, 'ws')).toMatchObject({ code: 0x89 })
    expect(await s.snapshot()).toEqual(before)
  })
})
