import { describe, expect, it } from 'vitest'
import type { ResourceEvent } from '../src/index.js'
import { EventStream } from '../src/index.js'
import { admin, runtimeFixture } from './helpers.js'

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
    await new Promise((r) => setTimeout(r, 20))
    await runtime.patch('Dog/rex', { age: 3 }, admin)
    incoming.push({ bark: true })
    await new Promise((r) => setTimeout(r, 20))
    ;(stream as EventStream).send({ note: 'from the server' })
    await reading
    expect(events.map((e) => [e.type, e.retained, e.value])).toEqual([
      ['put', true, { name: 'Rex' }],
      ['patch', false, { name: 'Rex', age: 3 }],
      ['message', false, { bark: true }],
      ['message', false, { note: 'from the server' }],
    ])
    expect((stream as EventStream).closed).toBe(true)
  })

  it('resumes a table stream after a cursor (SSE Last-Event-ID) without current values', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const a = await runtime.put('Dog/a', { name: 'A' }, admin)
    const firstCursor = runtime.store.log.lastCursor
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
})
