import {
  type ConnectOptions,
  type Key,
  type RequestContext,
  Resource,
  type ResourceRuntime,
} from '@proj/resource'
import { once, waitFor } from '@proj/test-utils'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { openTestRuntime, type TestRuntime } from './support/runtime.js'
import { startServer, type TestServer } from './support/server.js'

/** A custom resource whose connect() is an async generator over a subscription to its own record. */
const state = { started: 0, finished: 0 }
async function* watch(self: Resource, id: Key | undefined, ctx: RequestContext) {
  state.started++
  const stream = await Resource.prototype.connect.call(self, id, undefined, ctx)
  try {
    for await (const event of stream) yield { seen: event.value }
  } finally {
    state.finished++
  }
}
class Watch extends Resource {
  override connect(id: Key | undefined, _incoming: unknown, ctx: RequestContext, _options?: ConnectOptions) {
    return watch(this, id, ctx) as never
  }
}

let rt: TestRuntime
let srv: TestServer
const ctx = { user: { username: 'ann', role: 'admin', superUser: true } }
const auth = { authorization: `Basic ${Buffer.from('ann:secret').toString('base64')}` }
const subscriptions = () => (rt.runtime as ResourceRuntime).subscriptionCount
const publish = (value: unknown) =>
  rt.runtime.publish(
    'Watch/w',
    { payload: new TextEncoder().encode(JSON.stringify(value)), retain: false, qos: 1 },
    ctx,
  )

beforeEach(async () => {
  state.started = 0
  state.finished = 0
  rt = await openTestRuntime({ resources: { Watch } })
  srv = await startServer({ runtime: rt.runtime, sseHeartbeatMs: 60_000 })
})

afterEach(async () => {
  await srv.close()
  await rt.close()
})

describe('closing a connection to a generator connect()', () => {
  it('a WebSocket close ends the generator subscription within a bounded time', async () => {
    const ws = new WebSocket(`${srv.wsUrl}/Watch/w`, { headers: auth })
    const messages: unknown[] = []
    ws.on('message', (data: Buffer) => messages.push(JSON.parse(data.toString('utf8'))))
    await once(ws, 'open')
    await waitFor(() => subscriptions() === 1, { timeoutMs: 2000, message: 'the subscription' })
    await publish({ n: 1 })
    await waitFor(() => messages.length === 1, { timeoutMs: 2000, message: 'the first event' })
    expect(messages[0]).toMatchObject({ type: 'message', value: { seen: { n: 1 } } })
    // The generator now waits for an event that never comes; the client goes away.
    ws.close()
    await once(ws, 'close')
    await waitFor(() => subscriptions() === 0, { timeoutMs: 2000, message: 'zero subscriptions' })
    await waitFor(() => state.finished === 1, { timeoutMs: 2000, message: "the generator's finally" })
  })

  it('an SSE client that goes away ends the subscription within a bounded time', async () => {
    const abort = new AbortController()
    const res = await fetch(`${srv.url}/Watch/w`, {
      headers: { ...auth, accept: 'text/event-stream' },
      signal: abort.signal,
    })
    expect(res.status).toBe(200)
    const reader = res.body!.getReader()
    await waitFor(() => subscriptions() === 1, { timeoutMs: 2000, message: 'the subscription' })
    await publish({ n: 2 })
    let text = ''
    while (!text.includes('"n":2')) {
      const { value, done } = await reader.read()
      if (done) throw new Error('the stream ended early')
      text += new TextDecoder().decode(value)
    }
    abort.abort()
    await reader.cancel().catch(() => {})
    await waitFor(() => subscriptions() === 0, { timeoutMs: 2000, message: 'zero subscriptions' })
    await waitFor(() => state.finished === 1, { timeoutMs: 2000, message: "the generator's finally" })
  })

  it('many short-lived sockets leave no subscription behind', async () => {
    for (let i = 0; i < 10; i++) {
      const ws = new WebSocket(`${srv.wsUrl}/Watch/w`, { headers: auth })
      await once(ws, 'open')
      ws.close()
      await once(ws, 'close')
    }
    await waitFor(() => state.started === 10 && subscriptions() === 0, {
      timeoutMs: 3000,
      message: 'zero subscriptions',
    })
  })
})
