import { type ChangeEvent, openStore } from '@proj/storage'
import { tempDir, waitFor } from '@proj/test-utils'
import { describe, expect, it } from 'vitest'
import { admin, bytes, collector, runtimeFixture, text } from './helpers.js'

describe('publish and subscribe', () => {
  it('delivers a QoS 0 message on an unclaimed topic synchronously, unlogged, with the original bytes', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const { events, listener } = collector()
    const sub = await runtime.subscribe('sensors/+/temp', listener, { qos: 0 }, admin)
    await sub.ready
    const payload = bytes('{ "c": 21.5 }')
    const result = await runtime.publish('sensors/kitchen/temp', { payload, retain: false, qos: 0 }, admin)
    expect(result).toEqual({})
    expect(events).toHaveLength(1)
    const event = events[0]!
    expect(event).toMatchObject({
      type: 'message',
      topic: 'sensors/kitchen/temp',
      path: '',
      cursor: 0,
      retained: false,
    })
    expect(event.value).toEqual({ c: 21.5 })
    // a JSON subscriber gets the publisher's bytes (whitespace and all), not a re-encoding
    expect(runtime.encode(event, 'application/json')).toBe(payload)
    expect(runtime.storage.log.lastCursor).toBe(0)
    sub.close()
    await runtime.publish('sensors/kitchen/temp', { payload, retain: false, qos: 0 }, admin)
    expect(events).toHaveLength(1)
  })

  it('keeps a retained message on an unclaimed topic and delivers it first to a wildcard subscriber', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const raw = new Uint8Array([0xff, 0x00, 0x01])
    await runtime.publish('plain/a', { payload: raw, retain: true, qos: 1 }, admin)
    await runtime.publish(
      'plain/b/c',
      { payload: bytes('"text"'), contentType: 'application/json', retain: true, qos: 0 },
      admin,
    )
    const { events, listener } = collector()
    const sub = await runtime.subscribe('plain/#', listener, { qos: 1 }, admin)
    await sub.ready
    expect(events.map((e) => [e.topic, e.retained])).toEqual([
      ['plain/a', true],
      ['plain/b/c', true],
    ])
    expect(Buffer.from(events[0]!.value as Uint8Array)).toEqual(Buffer.from(raw))
    expect(Buffer.from(runtime.encode(events[0]!, 'application/cbor'))).toEqual(Buffer.from(raw))
    expect(events[1]!.contentType).toBe('application/json')
    expect(events[1]!.value).toBe('text')
    // an empty retained payload deletes; the delete is an event
    await runtime.publish('plain/a', { payload: new Uint8Array(0), retain: true, qos: 1 }, admin)
    await waitFor(() => events.length === 3)
    expect(events[2]).toMatchObject({ type: 'delete', topic: 'plain/a', retained: false })
    expect(runtime.encode(events[2]!, 'application/json')).toHaveLength(0)
    expect(await runtime.get('plain/a', admin)).toBeUndefined()
  })

  it("shares one event between the live feed and the publish result without writing on storage's change", async () => {
    await using dir = await tempDir('proj-resource-')
    const store = await openStore({ path: dir.path, noSync: true })
    try {
      await using f = await runtimeFixture({ store })
      const { runtime } = f
      const changes: ChangeEvent[] = []
      const stop = store.onChange((change) => changes.push(change))
      const { events, listener } = collector()
      const sub = await runtime.subscribe('#', listener, { qos: 1 }, admin)
      await sub.ready
      const record = await runtime.publish(
        'Dog/rex',
        { payload: bytes('{"name":"Rex"}'), retain: true, qos: 1 },
        admin,
      )
      const plain = await runtime.publish('plain/a', { payload: bytes('1'), retain: false, qos: 1 }, admin)
      const cleared = await runtime.publish(
        'Dog/rex',
        { payload: new Uint8Array(0), retain: true, qos: 1 },
        admin,
      )
      await runtime.put('Dog/max', { name: 'Max' }, admin)
      await waitFor(() => expect(events).toHaveLength(4))
      expect([events[0], events[1], events[2]]).toEqual([record.event, plain.event, cleared.event])
      expect(events[0]).toBe(record.event)
      expect(events[1]).toBe(plain.event)
      expect(events[2]).toBe(cleared.event)
      // The runtime keeps what it derives from a change in objects of its own, never on storage's event.
      expect(changes).toHaveLength(4)
      for (const change of changes) expect(Object.getOwnPropertySymbols(change)).toEqual([])
      stop()
      sub.close()
    } finally {
      await store.close()
    }
  })

  it('writes a table record with a retained publish and sends later changes as events', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const { events, listener } = collector()
    const sub = await runtime.subscribe('Dog/#', listener, { qos: 1 }, admin)
    await sub.ready
    const payload = bytes('{"name":"Rex","age":3}')
    const result = await runtime.publish('Dog/rex', { payload, retain: true, qos: 1 }, admin)
    expect(result.event).toMatchObject({ type: 'put', topic: 'Dog/rex', path: 'Dog', id: 'rex' })
    expect(result.event!.cursor).toBeGreaterThan(0)
    expect(events).toHaveLength(1)
    expect(events[0]).toBe(result.event)
    // the stored record gained its primary key, so the publisher's bytes no longer describe it
    expect(runtime.encode(events[0]!, 'application/json')).not.toBe(payload)
    expect(JSON.parse(text(runtime.encode(events[0]!, 'application/json')))).toEqual({
      name: 'Rex',
      age: 3,
      id: 'rex',
    })
    const stored = await runtime.get('Dog/rex', admin)
    expect(stored?.value).toMatchObject({ name: 'Rex', age: 3, id: 'rex' })
    // bytes that already hold the id are the record: same-format subscribers get them unchanged
    const withId = bytes('{"id":"rex","name":"Rex","age":4}')
    const same = await runtime.publish('Dog/rex', { payload: withId, retain: true, qos: 1 }, admin)
    expect(runtime.encode(same.event!, 'application/json')).toBe(withId)
    events.splice(1)
    // a non-retained message reaches subscribers without changing the record
    await runtime.publish('Dog/rex', { payload: bytes('{"name":"Max"}'), retain: false, qos: 1 }, admin)
    expect(events[1]).toMatchObject({ type: 'message', topic: 'Dog/rex', value: { name: 'Max' } })
    expect((await runtime.get('Dog/rex', admin))?.value).toMatchObject({ name: 'Rex' })
    // REST writes produce the same events
    await runtime.delete('Dog/rex', admin)
    expect(events[2]).toMatchObject({ type: 'delete', topic: 'Dog/rex' })
    sub.close()
  })
})
