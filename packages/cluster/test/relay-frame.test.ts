import { RuntimeEvent } from '@proj/resource'
import { describe, expect, it } from 'vitest'
import { FrameWriter, frameOrigin, readFrames, type SharedChoice } from '../src/relay-frame.js'

function roundTrip(events: [RuntimeEvent, SharedChoice][], nodeId = 0xfedcba98) {
  const w = new FrameWriter(nodeId, 16) // small: the buffer has to grow
  for (const [e, s] of events) w.write(e, s)
  const out: [RuntimeEvent, SharedChoice][] = []
  readFrames(w.bytes(), (e, s) => out.push([e, s]))
  expect(frameOrigin(w.bytes())).toBe(nodeId)
  return out
}

const fields = (e: RuntimeEvent) => ({
  type: e.type,
  topic: e.topic,
  path: e.path,
  id: e.id,
  timestamp: e.timestamp,
  user: e.user,
  origin: e.origin,
  meta: e.meta,
  payload: e.payload === undefined ? undefined : Buffer.from(e.payload).toString('hex'),
  contentType: e.contentType,
  value: e.payload === undefined ? e.value : undefined, // payload events decode their bytes alike
})

describe('relay frames', () => {
  it('carry a batch of events in order with every field', () => {
    const plain = new RuntimeEvent('message', 'a/b', '', 'a/b', 1733212345678901.5, 0, undefined, false, {
      qos: 0,
      clientId: 'pub-1',
    }).setPayload(new Uint8Array([1, 2, 3]), undefined)
    plain.origin = 'pub-1'
    const full = new RuntimeEvent('message', 'Dog/7', 'Dog', [7, 'x'], 42.25, 0, 'alice', false, {
      qos: 0,
      properties: { userProperties: { k: 'v' }, messageExpiryInterval: 5 },
    }).setPayload(Buffer.from('{"n":1}'), 'application/json')
    const value = new RuntimeEvent('message', 'é/日本', 'T', 'other/id', 1, 0, undefined, false, undefined)
    value.value = { nested: [1, 'two', null] }
    const empty = new RuntimeEvent('message', '', '', '', 0, 0, '', false, { qos: 0 }).setPayload(
      new Uint8Array(0),
      '',
    )
    const shared: SharedChoice = [
      ['g\0sh/#', 'b'],
      ['h\0#', 'c'],
    ]
    const events: [RuntimeEvent, SharedChoice][] = [
      [plain, null],
      [full, shared],
      [value, null],
      [empty, null],
    ]
    const out = roundTrip(events)
    expect(out.map(([e]) => fields(e))).toEqual(events.map(([e]) => fields(e)))
    expect(out.map(([, s]) => s)).toEqual([null, shared, null, null])
  })

  it('leave the batch as it was when an event cannot be encoded', () => {
    const w = new FrameWriter(1)
    const ok = new RuntimeEvent('message', 't', '', 't', 1, 0, undefined, false, undefined).setPayload(
      new Uint8Array([9]),
      undefined,
    )
    w.write(ok, null)
    const bad = new RuntimeEvent('message', 't', '', 't', 2, 0, undefined, false, undefined)
    bad.value = 10n ** 30n // msgpack has no such integer
    expect(() => w.write(bad, null)).toThrow()
    w.write(ok, null)
    const got: number[] = []
    readFrames(w.bytes(), (e) => got.push(e.timestamp))
    expect(got).toEqual([1, 1])
    expect(w.count).toBe(2)
  })

  it('refuse an unknown version and a truncated batch', () => {
    const w = new FrameWriter(1)
    w.write(
      new RuntimeEvent('message', 't', '', 't', 1, 0, undefined, false, undefined).setPayload(
        new Uint8Array([1, 2]),
        undefined,
      ),
      null,
    )
    const bytes = Uint8Array.from(w.bytes())
    expect(() => readFrames(bytes.subarray(0, bytes.length - 1), () => {})).toThrow(/truncated/)
    bytes[0] = 9
    expect(() => readFrames(bytes, () => {})).toThrow(/version/)
  })
})
