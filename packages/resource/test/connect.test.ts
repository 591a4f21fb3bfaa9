import { waitFor } from '@proj/test-utils'
import { describe, expect, it } from 'vitest'
import type { ConnectOptions, Key, RequestContext, ResourceEvent } from '../src/index.js'
import { EventStream, Resource } from '../src/index.js'
import { admin, bytes, runtimeFixture } from './helpers.js'

/** Rejects when `promise` takes longer than `ms`: what "promptly" means in these tests. */
function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms)
    }),
  ])
}

/** Custom resources whose connect() is an async generator, counting what they hold open. */
function generatorResources() {
  const state = { finished: 0, signals: [] as AbortSignal[] }
  // A generator that streams its own record through the default connect() (a subscription).
  async function* watch(self: Resource, id: Key | undefined, ctx: RequestContext, options: ConnectOptions) {
    if (options.signal) state.signals.push(options.signal)
    const stream = await Resource.prototype.connect.call(self, id, undefined, ctx)
    try {
      for await (const event of stream) yield { seen: event.value }
    } finally {
      state.finished++
    }
  }
  // A generator waiting on the client's messages.
  async function* echo(incoming: AsyncIterable<unknown> | undefined) {
    try {
      yield { ready: true }
      for await (const message of incoming ?? []) yield { echo: message }
    } finally {
      state.finished++
    }
  }
  // A generator that subscribes with a listener and ends without closing its subscription.
  async function* careless(self: Resource, ctx: RequestContext) {
    await self.subscribe('#', () => {}, { retained: false }, ctx)
    yield { subscribed: true }
  }
  class Watch extends Resource {
    override connect(
      id: Key | undefined,
      _incoming: unknown,
      ctx: RequestContext,
      options: ConnectOptions = {},
    ) {
      return watch(this, id, ctx, options) as never
    }
  }
  class Echo extends Resource {
    override connect(_id: Key | undefined, incoming: AsyncIterable<unknown> | undefined) {
      return echo(incoming) as never
    }
  }
  class Careless extends Resource {
    override connect(_id: Key | undefined, _incoming: unknown, ctx: RequestContext) {
      return careless(this, ctx) as never
    }
  }
  return { state, resources: { Watch, Echo, Careless } }
}

/** A source of incoming messages that never sends anything. */
const silence: AsyncIterable<unknown> = {
  [Symbol.asyncIterator]: () => ({ next: () => new Promise<IteratorResult<unknown>>(() => {}) }),
}

/** An incoming message source the test pushes into. */
function channel<T>() {
  const queue: T[] = []
  let wake: (() => void) | undefined
  let done = false
  return {
    push(value: T) {
      queue.push(value)
      wake?.()
    },
    end() {
      done = true
      wake?.()
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        if (queue.length > 0) yield queue.shift()!
        else if (done) return
        else await new Promise<void>((r) => (wake = r))
      }
    },
  }
}

describe('connect', () => {
  it('runs a custom resource whose connect is an async generator, wrapping yielded values as events', async () => {
    await using f = await runtimeFixture()
    const incoming = channel<unknown>()
    const stream = await f.runtime.connect('Counter/c1', admin, incoming)
    const iterator = stream[Symbol.asyncIterator]()
    const first = (await iterator.next()).value as ResourceEvent
    expect(first).toMatchObject({
      type: 'message',
      topic: 'Counter/c1',
      path: 'Counter',
      id: 'c1',
      value: { hello: 'c1' },
    })
    incoming.push('ping')
    expect(((await iterator.next()).value as ResourceEvent).value).toEqual({ n: 1, echo: 'ping' })
    incoming.push({ x: 1 })
    expect(((await iterator.next()).value as ResourceEvent).value).toEqual({ n: 2, echo: { x: 1 } })
    incoming.end()
    expect((await iterator.next()).done).toBe(true)
  })

  it('streams a record by default: current value, changes, incoming values as messages, close unsubscribes', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    await runtime.put('Dog/rex', { name: 'Rex' }, admin)
    const incoming = channel<unknown>()
    const stream = await runtime.connect('Dog/rex', admin, incoming)
    expect(stream).toBeInstanceOf(EventStream)
    const events: ResourceEvent[] = []
    const reading = (async () => {
      for await (const event of stream) {
        events.push(event)
        if (events.length === 4) break
      }
    })()
    // Barriers, not sleeps: the current value arrived (the stream is live), then the incoming message
    // was committed and delivered, before the server sends its own.
    await waitFor(() => events.length === 1, { message: 'current value' })
    await runtime.patch('Dog/rex', { age: 3 }, admin)
    incoming.push({ bark: true })
    await waitFor(() => events.length === 3, { message: 'incoming message delivered' })
    ;(stream as EventStream).send({ note: 'from the server' })
    await reading
    expect(events.map((e) => [e.type, e.retained, e.value])).toEqual([
      ['put', true, { name: 'Rex', id: 'rex' }],
      ['patch', false, { name: 'Rex', age: 3, id: 'rex' }],
      ['message', false, { bark: true }],
      ['message', false, { note: 'from the server' }],
    ])
    expect((stream as EventStream).closed).toBe(true)
  })

  it('resumes a table stream after a cursor (SSE Last-Event-ID) without current values', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const a = await runtime.put('Dog/a', { name: 'A' }, admin)
    const firstCursor = runtime.storage.log.lastCursor
    await runtime.put('Dog/b', { name: 'B' }, admin)
    expect(a.created).toBe(true)
    const stream = (await runtime.connect('/Dog/', admin, undefined, { after: firstCursor })) as EventStream
    const iterator = stream[Symbol.asyncIterator]()
    const event = (await iterator.next()).value as ResourceEvent
    expect(event).toMatchObject({ type: 'put', topic: 'Dog/b', retained: false })
    expect(event.cursor).toBeGreaterThan(firstCursor)
    stream.close()
    expect((await iterator.next()).done).toBe(true)
  })

  it('checks read permission before connecting', async () => {
    await using f = await runtimeFixture()
    await expect(
      f.runtime.connect('Anything/x', { user: { username: 'r', role: 'reader', superUser: false } }),
    ).rejects.toMatchObject({
      code: 'FORBIDDEN',
    })
  })

  it('stops an async generator connect() at once when the consumer returns during a pending next()', async () => {
    const { state, resources } = generatorResources()
    await using f = await runtimeFixture({ resources })
    const { runtime } = f
    const stream = await runtime.connect('Watch/a', admin)
    const iterator = stream[Symbol.asyncIterator]()
    const first = iterator.next()
    await waitFor(() => runtime.subscriptionCount === 1, { timeoutMs: 2000, message: 'the subscription' })
    await runtime.publish('Watch/a', { payload: bytes('{"n":1}'), retain: false, qos: 1 }, admin)
    expect(((await first).value as ResourceEvent).value).toEqual({ seen: { n: 1 } })
    const pending = iterator.next() // the generator now waits for the next event, which never comes
    await within(1000, iterator.return!(), 'return()')
    expect(await within(1000, pending, 'the pending next()')).toMatchObject({ done: true })
    await waitFor(() => runtime.subscriptionCount === 0, { timeoutMs: 2000, message: 'no subscription' })
    await waitFor(() => state.finished === 1, { timeoutMs: 2000, message: "the generator's finally" })
    expect(state.signals[0]?.aborted).toBe(true)
    expect(await iterator.next()).toMatchObject({ done: true })
  })

  it('ends a generator blocked on incoming messages when the connection closes', async () => {
    const { state, resources } = generatorResources()
    await using f = await runtimeFixture({ resources })
    const stream = await f.runtime.connect('Echo/x', admin, silence)
    const iterator = stream[Symbol.asyncIterator]()
    expect(((await iterator.next()).value as ResourceEvent).value).toEqual({ ready: true })
    const pending = iterator.next()
    await within(1000, iterator.return!(), 'return()')
    expect(await within(1000, pending, 'the pending next()')).toMatchObject({ done: true })
    await waitFor(() => state.finished === 1, { timeoutMs: 2000, message: "the generator's finally" })
  })

  it('closes subscriptions a generator left open when it ends by itself', async () => {
    const { resources } = generatorResources()
    await using f = await runtimeFixture({ resources })
    const { runtime } = f
    const stream = await runtime.connect('Careless/x', admin)
    const values: unknown[] = []
    for await (const event of stream) values.push(event.value)
    expect(values).toEqual([{ subscribed: true }])
    expect(runtime.subscriptionCount).toBe(0)
  })
})
