import { waitFor } from '@proj/test-utils'
import { describe, expect, it } from 'vitest'
import type { Delivery, ResourceEvent } from '../src/index.js'
import { admin, bytes, runtimeFixture } from './helpers.js'

type Seen = { type: string; topic: string; id: unknown; value: unknown; retained: boolean; props?: unknown }

function recorder() {
  const events: Seen[] = []
  const deliveries: Delivery[] = []
  const listener = (event: ResourceEvent, delivery: Delivery) => {
    events.push({
      type: event.type,
      topic: event.topic,
      id: event.id,
      value: event.value,
      retained: event.retained,
      props: (event.meta?.properties as { userProperties?: unknown } | undefined)?.userProperties,
    })
    deliveries.push(delivery)
  }
  return { events, deliveries, listener }
}

const retained = (value: unknown) => ({
  payload: bytes(JSON.stringify(value)),
  retain: true,
  qos: 1 as const,
})
const message = (value: unknown, qos: 0 | 1 = 1) => ({
  payload: bytes(JSON.stringify(value)),
  retain: false,
  qos,
})

describe('query subscriptions', () => {
  it('delivers the matching records, then enter, update, leave, delete and messages', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    await runtime.put('Dog/1', { name: 'Rex', age: 5, tags: ['lab'] }, admin)
    await runtime.put('Dog/2', { name: 'Fido', age: 2, tags: ['lab'] }, admin)
    await runtime.put('Dog/3', { name: 'Max', age: 7, tags: ['pug'] }, admin)
    const { events, deliveries, listener } = recorder()
    const sub = await runtime.subscribe(
      'Dog/?tags=lab&age=gt=3',
      listener,
      { qos: 1, subscriptionId: 7 },
      admin,
    )
    await sub.ready
    expect(events).toEqual([
      {
        type: 'put',
        topic: 'Dog/1',
        id: '1',
        value: { id: '1', name: 'Rex', age: 5, tags: ['lab'] },
        retained: true,
      },
    ])
    events.length = 0
    await runtime.patch('Dog/2', { age: 4 }, admin) // enters by a patch: a put of the whole record
    await runtime.patch('Dog/1', { age: 6 }, admin) // stays: the patch as it happened
    await runtime.publish('Dog/3', retained({ name: 'Max', age: 7, tags: ['lab'] }), admin) // enters by a retained publish
    await runtime.publish('Dog/1', message({ bark: true }), admin) // a message to a matching record
    await runtime.publish('Dog/1', message({ bark: 0 }, 0), admin) // unlogged too
    await runtime.publish('Dog/9', message({ bark: 1 }), admin) // no such record: nothing
    await runtime.put('Dog/2', { name: 'Fido', age: 1, tags: ['lab'] }, admin) // leaves
    await runtime.put('Dog/2', { name: 'Fido', age: 0, tags: ['lab'] }, admin) // still out: nothing
    await runtime.delete('Dog/3', admin) // deleted while in
    await runtime.delete('Dog/2', admin) // deleted while out: nothing
    await runtime.put('Dog/4', { name: 'New', age: 9, tags: ['x', 'lab'] }, admin) // inserted
    await waitFor(() => events.length >= 8)
    expect(events.map((e) => [e.type, e.id, e.retained])).toEqual([
      ['put', '2', false],
      ['patch', '1', false],
      ['put', '3', false],
      ['message', '1', false],
      ['message', '1', false],
      ['leave', '2', false],
      ['delete', '3', false],
      ['put', '4', false],
    ])
    expect(events[0]!.value).toEqual({ id: '2', name: 'Fido', age: 4, tags: ['lab'] })
    expect(events[1]!.value).toMatchObject({ age: 6 })
    expect(events[5]).toMatchObject({ value: undefined, props: { event: 'leave' }, topic: 'Dog/2' })
    expect(events[6]).toMatchObject({ props: { event: 'delete' }, topic: 'Dog/3' })
    expect(deliveries.every((d) => d.qos === 1 && d.subscriptionIds.join() === '7')).toBe(true)
    sub.close()
    expect(runtime.subscriptionCount).toBe(0)
  })

  it('applies select() to what it delivers, and refuses sort(), limit() and relationships', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    await runtime.put('Dog/1', { name: 'Rex', age: 5 }, admin)
    const { events, listener } = recorder()
    const sub = await runtime.subscribe('Dog/?age=ge=5&select(name)', listener, {}, admin)
    await sub.ready
    await runtime.patch('Dog/1', { age: 6 }, admin)
    await runtime.patch('Dog/1', { age: 1 }, admin)
    await waitFor(() => events.length === 3)
    expect(events.map((e) => [e.type, e.value])).toEqual([
      ['put', 'Rex'],
      ['patch', 'Rex'],
      ['leave', undefined],
    ])
    for (const bad of ['Dog/?age=1&sort(name)', 'Dog/?limit(2)', 'Dog/?age=gt=x', 'Dog/?age=1|']) {
      await expect(runtime.subscribe(bad, () => {}, {}, admin)).rejects.toMatchObject({ code: 'INVALID' })
    }
    await expect(runtime.subscribe('Nope/?a=1', () => {}, {}, admin)).rejects.toMatchObject({
      code: 'NOT_FOUND',
    })
    await expect(runtime.subscribe('$share/g/Dog/?a=1', () => {}, {}, admin)).rejects.toMatchObject({
      code: 'INVALID',
    })
  })

  it('shares one index entry between subscriptions with the same conditions, each with its own options', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const a = recorder()
    const b = recorder()
    const c = recorder()
    const subA = await runtime.subscribe('Dog/?age=gt=3', a.listener, { subscriptionId: 1 }, admin)
    const subB = await runtime.subscribe(
      'Dog/?select(name)&age=gt=3',
      b.listener,
      { subscriptionId: 2 },
      admin,
    )
    const subC = await runtime.subscribe('Dog/?age=gt=3', c.listener, { subscriptionId: 3 }, admin)
    await Promise.all([subA.ready, subB.ready, subC.ready])
    await runtime.put('Dog/1', { name: 'Rex', age: 5 }, admin)
    await waitFor(() => a.events.length === 1 && b.events.length === 1 && c.events.length === 1)
    expect(b.events[0]!.value).toBe('Rex')
    expect([a, b, c].map((r) => r.deliveries[0]!.subscriptionIds[0])).toEqual([1, 2, 3])
    subA.close()
    await runtime.patch('Dog/1', { age: 1 }, admin)
    await waitFor(() => b.events.length === 2 && c.events.length === 2)
    expect(a.events).toHaveLength(1)
    expect(c.events[1]!.type).toBe('leave')
    subB.close()
    subC.close()
    expect(runtime.subscriptionCount).toBe(0)
  })

  it('offers an event to the members there were when it came, when a listener closes or adds one', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const got: string[] = []
    const subs: { close(): void; ready: Promise<void> }[] = []
    let late: Promise<unknown> | undefined
    const listen = (name: string) => (event: ResourceEvent) => {
      got.push(`${name} ${event.type}`)
      if (name !== 'a' || late !== undefined) return
      // the first member closes the second (the last then takes its slot) and a new one joins
      subs[1]!.close()
      late = runtime.subscribe('Dog/?age=gt=3', listen('d'), { retained: false }, admin)
    }
    for (const name of ['a', 'b', 'c', 'e'])
      subs.push(await runtime.subscribe('Dog/?age=gt=3', listen(name), { retained: false }, admin))
    await runtime.put('Dog/1', { name: 'Rex', age: 5 }, admin)
    await waitFor(() => got.length === 3)
    await late
    expect(got.sort()).toEqual(['a put', 'c put', 'e put'])
    await runtime.patch('Dog/1', { age: 6 }, admin)
    await waitFor(() => got.length === 7)
    expect(got.slice(3).sort()).toEqual(['a patch', 'c patch', 'd patch', 'e patch'])
  })

  it('delivers to plain members and to members with no-local, select() or a replay in one group alike', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const me = { ...admin, clientId: 'me' }
    await runtime.put('Dog/1', { name: 'Before', age: 5 }, admin)
    const cursor = runtime.storage.log.lastCursor
    await runtime.put('Dog/2', { name: 'Replayed', age: 6 }, admin)
    const [plain, local, selected, resumed] = [recorder(), recorder(), recorder(), recorder()]
    const subs = await Promise.all([
      runtime.subscribe('Dog/?age=gt=3', plain.listener, { retained: false }, me),
      runtime.subscribe('Dog/?age=gt=3', local.listener, { retained: false, noLocal: true }, me),
      runtime.subscribe('Dog/?select(name)&age=gt=3', selected.listener, { retained: false }, me),
      runtime.subscribe('Dog/?age=gt=3', resumed.listener, { after: cursor }, me),
    ])
    await Promise.all(subs.map((s) => s.ready))
    await runtime.put('Dog/3', { name: 'Mine', age: 7 }, me)
    await runtime.put('Dog/4', { name: 'Theirs', age: 8 }, { ...admin, clientId: 'other' })
    await runtime.patch('Dog/2', { age: 1 }, admin)
    await waitFor(() => plain.events.length === 3 && resumed.events.length === 4)
    const seen = (r: ReturnType<typeof recorder>) => r.events.map((e) => `${e.type} ${String(e.id)}`)
    expect(seen(plain)).toEqual(['put 3', 'put 4', 'leave 2'])
    expect(seen(local)).toEqual(['put 4', 'leave 2'])
    expect(selected.events.map((e) => e.value)).toEqual(['Mine', 'Theirs', undefined])
    // the replay first (the put after the cursor), then each live change once
    expect(seen(resumed)).toEqual(['put 2', 'put 3', 'put 4', 'leave 2'])
    for (const sub of subs) sub.close()
    expect(runtime.subscriptionCount).toBe(0)
  })

  it('needs read permission on the table', async () => {
    await using f = await runtimeFixture({ roles: [{ name: 'nobody' }] })
    const { runtime } = f
    const nobody = { user: { username: 'nemo', role: 'nobody', superUser: false } }
    await expect(runtime.subscribe('Dog/?age=1', () => {}, {}, nobody)).rejects.toMatchObject({
      code: 'FORBIDDEN',
    })
    await expect(runtime.connect('/Dog/?age=1', nobody)).rejects.toMatchObject({ code: 'FORBIDDEN' })
  })

  it('skips its own writes with no-local', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const me = { ...admin, clientId: 'me' }
    const { events, listener } = recorder()
    const sub = await runtime.subscribe('Dog/?age=gt=1', listener, { noLocal: true }, me)
    await sub.ready
    await runtime.publish('Dog/1', retained({ name: 'Mine', age: 3 }), me)
    await runtime.publish('Dog/2', retained({ name: 'Theirs', age: 3 }), { ...admin, clientId: 'other' })
    await waitFor(() => events.length === 1)
    expect(events[0]!.id).toBe('2')
  })

  it('resumes after a cursor with the transitions of what happened while away, across a restart', async () => {
    await using f = await runtimeFixture()
    let runtime = f.runtime
    await runtime.put('Dog/1', { name: 'In', age: 5 }, admin)
    await runtime.put('Dog/2', { name: 'Out', age: 1 }, admin)
    await runtime.put('Dog/3', { name: 'In, then out, then in', age: 5 }, admin)
    await runtime.put('Dog/4', { name: 'In, deleted', age: 5 }, admin)
    const first = recorder()
    const sub = await runtime.subscribe('Dog/?age=gt=3', first.listener, {}, admin)
    await sub.ready
    expect(first.events.map((e) => e.id)).toEqual(['1', '3', '4'])
    const cursor = sub.cursor
    sub.close()
    await runtime.patch('Dog/1', { age: 1 }, admin) // leaves
    await runtime.patch('Dog/2', { age: 9 }, admin) // enters
    await runtime.patch('Dog/3', { age: 1 }, admin)
    await runtime.patch('Dog/3', { age: 8 }, admin)
    await runtime.delete('Dog/4', admin)
    await runtime.put('Dog/5', { name: 'Out, deleted', age: 1 }, admin)
    await runtime.delete('Dog/5', admin)
    runtime = await f.reopen()
    const again = recorder()
    const resumed = await runtime.subscribe(
      'Dog/?age=gt=3',
      again.listener,
      { after: cursor, retained: false },
      admin,
    )
    await resumed.ready
    expect(again.events.map((e) => [e.type, e.id])).toEqual([
      ['leave', '1'],
      ['put', '2'],
      ['leave', '3'],
      ['put', '3'],
      ['delete', '4'],
    ])
    resumed.close()
  })

  it('starts over with a reset and a snapshot when the log no longer reaches back', async () => {
    await using f = await runtimeFixture({ retention: { maxEvents: 2 } })
    const { runtime } = f
    await runtime.put('Dog/1', { name: 'A', age: 5 }, admin)
    for (let i = 0; i < 5; i++) await runtime.put(`Dog/${i + 10}`, { name: 'B', age: 1 }, admin)
    await runtime.storage.log.compact()
    const { events, listener } = recorder()
    const sub = await runtime.subscribe('Dog/?age=gt=3', listener, { after: 1, retained: false }, admin)
    await sub.ready
    expect(events.map((e) => [e.type, e.topic, e.retained])).toEqual([
      ['reset', 'Dog/?age=gt=3', false],
      ['put', 'Dog/1', true],
    ])
    expect(events[0]!.props).toEqual({ event: 'reset' })
  })

  it('streams over connect() for WebSocket and SSE, with Last-Event-ID resume', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    await runtime.put('Dog/1', { name: 'A', age: 5 }, admin)
    const stream = await runtime.connect('/Dog/?age=gt=3', admin)
    const it = stream[Symbol.asyncIterator]()
    const first = (await it.next()).value as ResourceEvent
    expect([first.type, first.id, first.resumeCursor]).toEqual(['put', '1', runtime.storage.log.lastCursor])
    await runtime.patch('Dog/1', { age: 1 }, admin)
    const second = (await it.next()).value as ResourceEvent
    expect([second.type, second.id]).toEqual(['leave', '1'])
    await it.return?.()
    await runtime.patch('Dog/1', { age: 6 }, admin)
    const resumed = await runtime.connect('/Dog/?age=gt=3', admin, undefined, { after: second.cursor })
    const r = resumed[Symbol.asyncIterator]()
    const third = (await r.next()).value as ResourceEvent
    expect([third.type, third.id]).toEqual(['put', '1'])
    await r.return?.()
    await waitFor(() => runtime.subscriptionCount === 0)
  })
})
