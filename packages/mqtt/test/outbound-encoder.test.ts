import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { OutboundEncoder } from '../src/outbound-encoder.js'
import type { ResourceEvent } from '../src/runtime.js'
import { openTestRuntime, type TestRuntime } from './helpers.js'

const anonymous = { user: null, transport: 'mqtt' as const }
const logger = { debug() {}, info() {}, warn() {}, error() {} }
const v3 = { v5: false, clientMaximumPacketSize: Number.POSITIVE_INFINITY, outAliases: null }

describe('OutboundEncoder', () => {
  let rt: TestRuntime
  let event: ResourceEvent

  beforeAll(async () => {
    rt = await openTestRuntime()
    const events: ResourceEvent[] = []
    await rt.runtime.subscribe('enc/#', (e) => events.push(e), {}, anonymous)
    const payload = Buffer.from(JSON.stringify({ n: 1 }))
    await rt.runtime.publish('enc/a', { payload, retain: false, qos: 1 }, anonymous)
    await vi.waitFor(() => expect(events.length).toBe(1))
    event = events[0]!
  })
  afterAll(() => rt.close())

  it('takes a payload from the runtime, which caches it on the event (one cache per event and media type)', () => {
    const encoder = new OutboundEncoder(rt.runtime, logger)
    const cbor = encoder.payload(event, 'application/cbor')
    expect(encoder.payload(event, 'application/cbor')).toBe(cbor)
    expect(rt.runtime.encode(event, 'application/cbor')).toBe(cbor)
  })

  it('shares one QoS 0 packet across subscribers getting the same bytes, and only those', () => {
    const encoder = new OutboundEncoder(rt.runtime, logger)
    const json = encoder.payload(event, 'application/json')
    const first = encoder.publish(v3, event, json, null, 0, false, 0, true)
    expect(first).not.toBeNull()
    expect(encoder.publish(v3, event, json, null, 0, false, 0, true)).toBe(first)
    const retained = encoder.publish(v3, event, json, null, 0, true, 0, true)
    expect(retained).not.toBe(first)
    expect(retained![0]).toBe(0x31)
    expect(encoder.publish(v3, event, json, null, 0, true, 0, true)).toBe(retained)
    expect(encoder.publish(v3, event, json, null, 0, false, 0, true)).toBe(first)
    // Not shareable (a subscription identifier): bytes of its own, equal when nothing differs.
    const own = encoder.publish(v3, event, json, null, 0, false, 0, false)
    expect(own).not.toBe(first)
    expect(own).toEqual(first)
    // A client with a smaller Maximum Packet Size gets none.
    expect(
      encoder.publish({ ...v3, clientMaximumPacketSize: 4 }, event, json, null, 0, false, 0, true),
    ).toBeNull()
  })
})
