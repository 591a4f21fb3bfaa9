import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { decode } from '@proj/codec'
import { once, waitFor } from '@proj/test-utils'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { openTestRuntime, type TestRuntime } from './support/runtime.js'
import { startServer, type TestServer } from './support/server.js'

// A full collection before each memory reading, so that it counts what is kept, not garbage the
// collector has not reached yet (on a busy machine it may not run during the loop at all).
setFlagsFromString('--expose-gc')
const collectGarbage = runInNewContext('gc') as () => void

let rt: TestRuntime
let srv: TestServer
const sockets: WebSocket[] = []

beforeEach(async () => {
  rt = await openTestRuntime()
  srv = await startServer({ runtime: rt.runtime, wsMaxQueuedBytes: 64 * 1024 })
})

afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate()
  await srv.close()
  await rt.close()
})

const basic = `Basic ${Buffer.from('ann:secret').toString('base64')}`
const auth = { authorization: basic }
const ctx = { user: { username: 'ann', role: 'admin', superUser: true }, transport: 'internal' as const }

/** Opens a WebSocket and collects every message (decoded) from the moment it opens. */
async function open(path: string, headers: Record<string, string> = {}) {
  const ws = new WebSocket(`${srv.wsUrl}${path}`, { headers: { ...auth, ...headers } })
  sockets.push(ws)
  const messages: any[] = []
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    messages.push(isBinary ? { binary: data } : JSON.parse(data.toString('utf8')))
  })
  await once(ws, 'open')
  return { ws, messages }
}

describe('WebSocket on a record', () => {
  it('sends the current value first, then every change as an envelope', async () => {
    await rt.runtime.put('Dog/1', { id: '1', name: 'Rex' }, ctx)
    const { messages } = await open('/Dog/1')
    await waitFor(() => messages.length >= 1, { message: 'current value' })
    expect(messages[0]).toMatchObject({
      type: 'put',
      id: '1',
      value: { id: '1', name: 'Rex' },
      version: expect.any(Number),
    })

    const put = await fetch(`${srv.url}/Dog/1`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ id: '1', name: 'Rex II' }),
    })
    const version = Number(put.headers.get('etag')!.slice(1, -1))
    await fetch(`${srv.url}/Dog/1`, { method: 'DELETE', headers: auth })
    await waitFor(() => messages.length >= 3, { message: 'put and delete' })
    expect(messages[1]).toEqual({ type: 'put', id: '1', value: { id: '1', name: 'Rex II' }, version })
    expect(messages[2]).toEqual({ type: 'delete', id: '1', version: expect.any(Number) })
  })

  it('follows the whole table at /Table/', async () => {
    const { messages } = await open('/Dog/')
    await rt.runtime.put('Dog/a', { id: 'a' }, ctx)
    await rt.runtime.put('Dog/b', { id: 'b' }, ctx)
    await waitFor(() => messages.filter((m) => m.type === 'put').length >= 2, { message: 'two puts' })
    expect(messages.filter((m) => m.type === 'put').map((m) => m.id)).toEqual(['a', 'b'])
  })

  it('encodes envelopes as CBOR from Accept, or from ?accept= for browsers', async () => {
    await rt.runtime.put('Dog/c', { id: 'c', n: 1 }, ctx)
    const viaHeader = await open('/Dog/c', { accept: 'application/cbor' })
    const viaQuery = await open('/Dog/c?accept=msgpack')
    await waitFor(() => viaHeader.messages.length >= 1 && viaQuery.messages.length >= 1)
    expect(decode(viaHeader.messages[0].binary, 'application/cbor')).toMatchObject({
      type: 'put',
      id: 'c',
      value: { id: 'c', n: 1 },
    })
    expect(decode(viaQuery.messages[0].binary, 'application/msgpack')).toMatchObject({
      type: 'put',
      id: 'c',
      value: { id: 'c', n: 1 },
    })
  })

  it('closes with 1007 when a client message cannot be decoded', async () => {
    const { ws } = await open('/Dog/bad')
    const closed = new Promise<number>((resolve) => ws.on('close', (code: number) => resolve(code)))
    ws.send('{not json')
    expect(await closed).toBe(1007)
  })

  it('hands client messages to the resource as incoming', async () => {
    const watcher = await open('/Dog/m')
    const sender = await open('/Dog/m')
    sender.ws.send(JSON.stringify({ hello: 'world' }))
    await waitFor(() => watcher.messages.some((m) => m.type === 'message'), { message: 'message event' })
    expect(watcher.messages.find((m) => m.type === 'message')).toMatchObject({
      type: 'message',
      id: 'm',
      value: { hello: 'world' },
    })
  })

  it('refuses the upgrade with an HTTP status when credentials are wrong or missing, access is denied or no format fits', async () => {
    const bob = { authorization: `Basic ${Buffer.from('bob:builder').toString('base64')}` }
    for (const [path, headers, status] of [
      ['/Dog/1', { authorization: `Basic ${Buffer.from('ann:wrong').toString('base64')}` }, 401],
      ['/Dog/1', {}, 401],
      ['/Anything/1', bob, 403],
      ['/Dog/1', { ...auth, accept: 'image/png' }, 406],
    ] as const) {
      const ws = new WebSocket(`${srv.wsUrl}${path}`, { headers })
      sockets.push(ws)
      ws.on('error', () => {})
      const statusCode = await new Promise<number | undefined>((resolve) => {
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode))
        ws.on('open', () => resolve(undefined))
      })
      expect(statusCode).toBe(status)
    }
  })

  it('refuses a cross-site upgrade (403) unless CORS allows its Origin; same-origin and Origin-less clients pass', async () => {
    await using restricted = await startServer({
      runtime: rt.runtime,
      cors: { origins: ['https://app.example'] },
      subprotocols: { mqtt: (stream) => stream.end() },
    })
    const host = new URL(restricted.url).host
    const attempt = (path: string, headers: Record<string, string>, protocol?: string) => {
      const ws = new WebSocket(`${restricted.wsUrl}${path}`, protocol, { headers: { ...auth, ...headers } })
      sockets.push(ws)
      ws.on('error', () => {})
      return new Promise<number>((resolve) => {
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
        ws.on('open', () => resolve(101))
      })
    }
    expect(await attempt('/Dog/1', { origin: 'https://evil.example' })).toBe(403)
    expect(await attempt('/', { origin: 'https://evil.example' }, 'mqtt')).toBe(403)
    expect(await attempt('/Dog/1', { origin: 'https://app.example' })).toBe(101)
    expect(await attempt('/Dog/1', { origin: `http://${host}` })).toBe(101)
    expect(await attempt('/Dog/1', {})).toBe(101)
  })

  it('with CORS `*` still refuses cross-site upgrades unless streamOrigins allows them', async () => {
    const attemptOn = (
      server: TestServer,
      path: string,
      headers: Record<string, string>,
      protocol?: string,
    ) => {
      const ws = new WebSocket(`${server.wsUrl}${path}`, protocol, { headers })
      sockets.push(ws)
      ws.on('error', () => {})
      return new Promise<number>((resolve) => {
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
        ws.on('open', () => resolve(101))
      })
    }
    const evil = { origin: 'https://evil.example' }
    await using open = await startServer({
      runtime: rt.runtime,
      cors: { origins: '*' },
      subprotocols: { mqtt: (stream) => stream.end() },
    })
    const host = new URL(open.url).host
    // a Basic header, a bearer token in the URL, or nothing: a foreign page never gets the socket
    expect(await attemptOn(open, '/Dog/1', { ...evil, ...auth })).toBe(403)
    expect(await attemptOn(open, '/Dog/1', evil)).toBe(403)
    expect(await attemptOn(open, '/', evil, 'mqtt')).toBe(403)
    expect(await attemptOn(open, '/Dog/1', { origin: `http://${host}`, ...auth })).toBe(101)
    expect(await attemptOn(open, '/Dog/1', auth)).toBe(101)
    await using listed = await startServer({
      runtime: rt.runtime,
      cors: { origins: '*' },
      streamOrigins: ['https://app.example'],
      subprotocols: { mqtt: (stream) => stream.end() },
    })
    expect(await attemptOn(listed, '/Dog/1', { ...evil, ...auth })).toBe(403)
    expect(await attemptOn(listed, '/', { origin: 'https://app.example' }, 'mqtt')).toBe(101)
    await using any = await startServer({
      runtime: rt.runtime,
      streamOrigins: '*',
      subprotocols: { mqtt: (stream) => stream.end() },
    })
    expect(await attemptOn(any, '/Dog/1', { ...evil, ...auth })).toBe(101)
    expect(await attemptOn(any, '/', evil, 'mqtt')).toBe(101)
  })

  it('closes a client that stops reading with 1008 once its queue passes the bound, keeping memory flat', async () => {
    await rt.runtime.put('Dog/slow', { id: 'slow' }, ctx)
    const { ws, messages } = await open('/Dog/slow')
    await waitFor(() => messages.length >= 1)
    const closed = new Promise<number>((resolve) => ws.on('close', (code: number) => resolve(code)))
    // Stop reading: the kernel buffers fill, then the server's socket buffer grows.
    ;(ws as unknown as { _socket: import('node:net').Socket })._socket.pause()

    const payload = 'x'.repeat(16 * 1024)
    const total = 2000 // 32 MB of events, far past the 64 KiB bound plus what kernel buffers can hold
    collectGarbage()
    const before = process.memoryUsage()
    for (let i = 0; i < total; i++) {
      await rt.runtime.publish(
        'Dog/slow',
        { payload: Buffer.from(JSON.stringify({ i, payload })), retain: false, qos: 0 },
        ctx,
      )
      if (i % 50 === 0) await new Promise((r) => setImmediate(r))
    }
    // Measured as the last publish returns: the bound is enforced as each event is queued, not later.
    collectGarbage()
    const after = process.memoryUsage()
    // Had the server kept every event, this would have grown by ~32 MB (twice that for UTF-16 strings).
    expect(after.arrayBuffers + after.heapUsed - (before.arrayBuffers + before.heapUsed)).toBeLessThan(
      16 * 1024 * 1024,
    )

    ;(ws as unknown as { _socket: import('node:net').Socket })._socket.resume()
    const code = await Promise.race([
      closed,
      new Promise<number>((_, reject) => setTimeout(() => reject(new Error('no close')), 10_000)),
    ])
    expect(code).toBe(1008)
    expect(messages.length).toBeLessThan(total / 2)
  })

  it('drops a client that stops answering pings, and keeps one that answers', async () => {
    await using pinging = await startServer({ runtime: rt.runtime, wsPingMs: 50 })
    const mute = new WebSocket(`${pinging.wsUrl}/Dog/ping`, { headers: auth, autoPong: false })
    const polite = new WebSocket(`${pinging.wsUrl}/Dog/ping`, { headers: auth })
    sockets.push(mute, polite)
    await Promise.all([once(mute, 'open'), once(polite, 'open')])
    const code = await once<number>(mute, 'close', 5000)
    expect(code).toBe(1006)
    expect(polite.readyState).toBe(WebSocket.OPEN)
  })

  it('closes every socket with 1001 when the handler closes', async () => {
    const { ws } = await open('/Dog/z')
    const closed = once<number>(ws, 'close')
    await srv.handler.close()
    expect(await closed).toBe(1001)
  })
})
