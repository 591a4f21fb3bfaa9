import { encode } from '@proj/codec'
import { waitFor } from '@proj/test-utils'
import { describe, expect, it } from 'vitest'
import type { Delivery, ResourceEvent, RuntimeEvent } from '../src/index.js'
import { SubscriptionImpl, SubscriptionRegistry } from '../src/subscriptions.js'
import { admin, bytes, collector, runtimeFixture, text } from './helpers.js'

describe('subscriptions', () => {
  it('resumes after a change-log cursor: replays matching logged events, then goes live, no gap, no duplicate', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const first = await runtime.publish(
      'Dog/a',
      { payload: bytes('{"name":"A"}'), retain: true, qos: 1 },
      admin,
    )
    const cursor = first.event!.cursor
    await runtime.put('Dog/b', { name: 'B' }, admin)
    await runtime.publish('other/t', { payload: bytes('1'), retain: false, qos: 1 }, admin)
    await runtime.publish('Dog/b', { payload: bytes('{"hi":1}'), retain: false, qos: 2 }, admin)
    await runtime.publish('Dog/b', { payload: bytes('{"lost":1}'), retain: false, qos: 0 }, admin)
    await runtime.delete('Dog/a', admin)
    const { events, listener } = collector()
    const sub = await runtime.subscribe('Dog/#', listener, { after: cursor, retained: false, qos: 1 }, admin)
    // written while the replay is pending: delivered once, after the replay
    const live = runtime.put('Dog/c', { name: 'C' }, admin)
    await sub.ready
    await live
    await waitFor(() => events.length === 4)
    expect(events.map((e) => [e.type, e.topic])).toEqual([
      ['put', 'Dog/b'],
      ['message', 'Dog/b'],
      ['delete', 'Dog/a'],
      ['put', 'Dog/c'],
    ])
    const cursors = events.map((e) => e.cursor)
    expect([...cursors].sort((a, b) => a - b)).toEqual(cursors)
    expect(cursors.every((c) => c > cursor)).toBe(true)
    // a resume from the last cursor after a restart replays nothing old
    const last = cursors.at(-1)!
    const runtime2 = await f.reopen()
    await runtime2.put('Dog/d', { name: 'D' }, admin)
    const again = collector()
    const sub2 = await runtime2.subscribe('Dog/#', again.listener, { after: last, retained: false }, admin)
    await sub2.ready
    expect(again.events.map((e) => e.topic)).toEqual(['Dog/d'])
  })

  it('delivers current records of a wildcard filter as retained, then changes; deletes are events', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    await runtime.put('Dog/a', { name: 'A' }, admin)
    await runtime.put('Dog/x/y', { name: 'XY' }, admin)
    await runtime.put('api/breeds/1', { name: 'Pug' }, admin)
    await runtime.publish('misc/1', { payload: bytes('"m"'), retain: true, qos: 0 }, admin)
    const plus = collector()
    await (await runtime.subscribe('Dog/+', plus.listener, {}, admin)).ready
    expect(plus.events.map((e) => [e.topic, e.retained, e.type])).toEqual([['Dog/a', true, 'put']])
    const one = collector()
    await (await runtime.subscribe('+/1', one.listener, {}, admin)).ready
    expect(one.events.map((e) => e.topic)).toEqual(['misc/1'])
    const all = collector()
    await (await runtime.subscribe('#', all.listener, {}, admin)).ready
    expect(all.events.map((e) => e.topic).sort()).toEqual(['Dog/a', 'Dog/x/y', 'api/breeds/1', 'misc/1'])
    const exact = collector()
    await (await runtime.subscribe('api/breeds/1', exact.listener, {}, admin)).ready
    expect(exact.events.map((e) => [e.topic, e.id, e.value])).toEqual([
      ['api/breeds/1', 1, { name: 'Pug', id: 1 }],
    ])
    await runtime.delete('api/breeds/1', admin)
    expect(exact.events.at(-1)).toMatchObject({ type: 'delete', retained: false, id: 1 })
    expect('value' in (exact.events.at(-1) as RuntimeEvent).toJSON()).toBe(false)
  })

  it('skips own messages with noLocal and merges overlapping subscriptions of one listener', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const me = { ...admin, clientId: 'me' }
    const got: [ResourceEvent, Delivery][] = []
    const listener = (event: ResourceEvent, delivery: Delivery) => {
      got.push([event, delivery])
    }
    await runtime.subscribe(
      't/#',
      listener,
      { qos: 1, subscriptionId: 1, noLocal: true, retained: false },
      me,
    )
    await runtime.subscribe('t/+', listener, { qos: 2, subscriptionId: 2, retained: false }, me)
    await runtime.publish(
      't/x',
      { payload: bytes('1'), retain: false, qos: 0, meta: { clientId: 'other' } },
      admin,
    )
    expect(got).toHaveLength(1)
    expect(got[0]![1]).toMatchObject({ qos: 2, subscriptionIds: [1, 2] })
    // own publish: only the subscription without noLocal matches
    await runtime.publish('t/x', { payload: bytes('2'), retain: false, qos: 0 }, me)
    expect(got).toHaveLength(2)
    expect(got[1]![1]).toMatchObject({ qos: 2, subscriptionIds: [2] })
    await runtime.publish('t/x/deep', { payload: bytes('3'), retain: false, qos: 0 }, me)
    expect(got).toHaveLength(2)
  })

  it("resolves a group's members' subscribe() once members() settled, the first and the later ones alike", async () => {
    let settle!: () => void
    const told: [string, string, boolean][] = []
    await using node = await runtimeFixture({
      shared: {
        members(group, filter, present) {
          told.push([group, filter, present])
          return present ? new Promise<void>((resolve) => (settle = resolve)) : undefined
        },
        delivers: () => true,
      },
    })
    const subscribed: string[] = []
    const { listener } = collector()
    const first = node.runtime
      .subscribe('$share/g/jobs/#', listener, {}, admin)
      .then(() => subscribed.push('first'))
    const second = node.runtime
      .subscribe('$share/g/jobs/#', collector().listener, {}, admin)
      .then(() => subscribed.push('second'))
    // a plain subscription does not wait
    await node.runtime.subscribe('jobs/#', collector().listener, {}, admin)
    await new Promise((r) => setImmediate(r))
    expect(subscribed).toEqual([])
    expect(told).toEqual([['g', 'jobs/#', true]])
    settle()
    await Promise.all([first, second])
    expect(subscribed).toEqual(['first', 'second'])
  })

  it('shares a $share subscription round robin and sends it no retained messages', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    await runtime.publish('jobs/1', { payload: bytes('0'), retain: true, qos: 1 }, admin)
    const a = collector()
    const b = collector()
    await (await runtime.subscribe('$share/g/jobs/#', a.listener, {}, admin)).ready
    await (await runtime.subscribe('$share/g/jobs/#', b.listener, {}, admin)).ready
    for (let i = 1; i <= 4; i++)
      await runtime.publish('jobs/x', { payload: bytes(String(i)), retain: false, qos: 0 }, admin)
    expect(a.events.map((e) => e.value)).toEqual([1, 3])
    expect(b.events.map((e) => e.value)).toEqual([2, 4])
  })

  it('forgets a shared group (and its round-robin turn) when its last member leaves, so group churn does not grow memory', () => {
    const registry = new SubscriptionRegistry(() => {})
    const listener = () => {}
    const join = (group: string) => {
      const sub = new SubscriptionImpl(
        registry,
        registry.owner(listener),
        `$share/${group}/jobs/#`,
        'jobs/#',
        { qos: 1, noLocal: false, retainAsPublished: false },
        null,
      )
      sub.group = group
      registry.add(sub)
      return sub
    }
    const members = Array.from({ length: 50 }, (_, i) => join(`g${i % 25}`))
    expect(registry.sharedGroupCount).toBe(25)
    for (const member of members.slice(0, 25)) registry.remove(member)
    expect(registry.sharedGroupCount).toBe(25)
    for (const member of members.slice(25)) registry.remove(member)
    expect(registry.sharedGroupCount).toBe(0)
    expect(registry.size).toBe(0)
  })

  it('passes a shared event to the next member while canDeliver() says full, else to the one whose turn it was', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const a = collector()
    const b = collector()
    let aFull = false
    let bFull = false
    await runtime.subscribe('$share/g/work/#', a.listener, { canDeliver: () => !aFull }, admin)
    await runtime.subscribe('$share/g/work/#', b.listener, { canDeliver: () => !bFull }, admin)
    const send = (v: number) =>
      runtime.publish('work/x', { payload: bytes(String(v)), retain: false, qos: 0 }, admin)
    await send(1) // a
    aFull = true
    await send(2) // a's turn would be next after b; b takes it
    await send(3) // a is full: b again
    aFull = false
    await send(4) // a
    aFull = true
    bFull = true
    await send(5) // both full: the member whose turn it was (b)
    expect(a.events.map((e) => e.value)).toEqual([1, 4])
    expect(b.events.map((e) => e.value)).toEqual([2, 3, 5])
  })

  it('keeps the properties of a retained message on a topic no table claims', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const properties = { userProperties: { k: 'v' }, messageExpiryInterval: 60 }
    await runtime.publish(
      'props/a',
      { payload: bytes('1'), retain: true, qos: 1, meta: { properties } },
      admin,
    )
    const a = collector()
    await (await runtime.subscribe('props/#', a.listener, {}, admin)).ready
    expect(a.events).toHaveLength(1)
    expect(a.events[0]!.retained).toBe(true)
    expect(a.events[0]!.meta?.properties).toEqual(properties)
  })

  it('decodes by content type, encodes once per media type and shares the buffer', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const seen: ResourceEvent[] = []
    await runtime.subscribe('Dog/#', (e) => seen.push(e), { retained: false }, admin)
    await runtime.subscribe('Dog/rex', (e) => seen.push(e), { retained: false }, admin)
    // with its primary key, so the stored record is exactly what the publisher's bytes say
    const cbor = encode({ id: 'rex', name: 'Rex', age: 2 }, 'application/cbor')
    await runtime.publish(
      'Dog/rex',
      { payload: cbor, contentType: 'application/cbor', retain: true, qos: 1 },
      admin,
    )
    expect(seen).toHaveLength(2)
    expect(seen[0]).toBe(seen[1])
    const event = seen[0]!
    expect(runtime.encode(event, 'application/cbor')).toBe(cbor)
    const json = runtime.encode(event, 'application/json')
    expect(JSON.parse(text(json))).toEqual({ id: 'rex', name: 'Rex', age: 2 })
    expect(runtime.encode(event, 'application/json')).toBe(json)
    expect(runtime.encode(seen[1]!, 'application/json')).toBe(json)
    expect(runtime.encode(event, 'application/msgpack')).toBe(runtime.encode(event, 'application/msgpack'))
    expect(() => runtime.encode(event, 'image/png')).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED_MEDIA_TYPE' }),
    )
    await expect(
      runtime.publish(
        'Dog/rex',
        { payload: bytes('{"name":'), contentType: 'application/json', retain: true, qos: 1 },
        admin,
      ),
    ).rejects.toMatchObject({ code: 'INVALID' })
    await expect(
      runtime.publish(
        'Dog/rex',
        { payload: bytes('x'), contentType: 'image/png', retain: true, qos: 1 },
        admin,
      ),
    ).rejects.toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE' })
    expect((await runtime.get('Dog/rex', admin))?.value).toMatchObject({ name: 'Rex', age: 2 })
    // an unclaimed topic keeps any content type byte for byte
    const png = new Uint8Array([0x89, 0x50])
    await runtime.publish('img/1', { payload: png, contentType: 'image/png', retain: true, qos: 1 }, admin)
    expect(await runtime.get('img/1', admin)).toMatchObject({ contentType: 'image/png' })
  })

  it('commits atomic state writes in the same transaction as the publish', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const inflight = runtime.state<{ packetId: number }>('mqtt-inbound')
    await inflight.put('client/7', { packetId: 7 })
    const { events, listener } = collector()
    await runtime.subscribe('q2/#', listener, { retained: false }, admin)
    const result = await runtime.publish('q2/t', { payload: bytes('"once"'), retain: false, qos: 2 }, admin, {
      atomic: [
        { store: 'mqtt-inbound', key: 'client/7', value: undefined },
        { store: 'mqtt-inbound', key: 'client/8', value: { packetId: 8 } },
      ],
    })
    expect(result.event?.cursor).toBeGreaterThan(0)
    expect(inflight.get('client/7')).toBeUndefined()
    expect(inflight.get('client/8')).toEqual({ packetId: 8 })
    expect(events.map((e) => e.value)).toEqual(['once'])
    // a failing publish leaves the state untouched
    await expect(
      runtime.publish('Dog/x', { payload: bytes('{"age":1}'), retain: true, qos: 2 }, admin, {
        atomic: [{ store: 'mqtt-inbound', key: 'client/9', value: { packetId: 9 } }],
      }),
    ).rejects.toMatchObject({ code: 'INVALID' })
    expect(inflight.get('client/9')).toBeUndefined()
    expect([...inflight.entries({ prefix: 'client/' })].map((e) => e.key)).toEqual(['client/8'])
    // state survives a restart and is never routable
    const runtime2 = await f.reopen()
    expect(runtime2.state('mqtt-inbound').get('client/8')).toEqual({ packetId: 8 })
    expect(await runtime2.get('__state.mqtt-inbound/client/8', admin)).toBeUndefined()
  })
})
