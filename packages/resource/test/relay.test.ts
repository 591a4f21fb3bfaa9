import { describe, expect, it } from 'vitest'
import type { RuntimeEvent } from '../src/index.js'
import { admin, bytes, collector, runtimeFixture, text } from './helpers.js'

describe('relay hook (QoS 0 messages between nodes)', () => {
  it('hands every transient event to relay, and dispatchRelayed delivers one without relaying it again', async () => {
    const relayed: RuntimeEvent[] = []
    await using a = await runtimeFixture({ relay: (event) => relayed.push(event) })
    const relayedByB: RuntimeEvent[] = []
    await using b = await runtimeFixture({ relay: (event) => relayedByB.push(event) })
    // no subscriber on a: the message still goes to the other nodes
    await a.runtime.publish('plain/x', { payload: bytes('hi'), retain: false, qos: 0 }, admin)
    await a.runtime.publish(
      'Dog/1',
      { payload: bytes('{"name":"Rex"}'), contentType: 'application/json', retain: false, qos: 0 },
      admin,
    )
    // stored writes travel through storage replication, not the relay
    await a.runtime.publish('plain/y', { payload: bytes('kept'), retain: false, qos: 1 }, admin)
    expect(relayed.map((e) => e.topic)).toEqual(['plain/x', 'Dog/1'])

    const { events, listener } = collector()
    await (await b.runtime.subscribe('#', listener, {}, admin)).ready
    await (await b.runtime.subscribe('Dog/#', listener, {}, admin)).ready
    for (const event of relayed) b.runtime.dispatchRelayed(event)
    expect(events.map((e) => e.topic)).toEqual(['plain/x', 'Dog/1'])
    expect(text(events[0]!.value as Uint8Array)).toBe('hi')
    expect(relayedByB).toEqual([])
  })
})
