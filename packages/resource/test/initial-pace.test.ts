import { describe, expect, it } from 'vitest'
import { admin, bytes, collector, runtimeFixture, text } from './helpers.js'

const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

describe("a subscription's initial events follow the subscriber's pace", () => {
  it('pauses while pace() holds it, keeps its snapshot, and delivers live events only after the retained set', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    for (let i = 0; i < 5; i++)
      await runtime.publish(`paced/${i}`, { payload: bytes(`"v${i}"`), retain: true, qos: 1 }, admin)
    const { events, listener } = collector()
    let release: (() => void) | undefined
    let asked = 0
    const pace = () => {
      asked++
      // one event at a time: each pause waits until the test lets it go on
      return new Promise<void>((resolve) => {
        release = resolve
      })
    }
    const sub = await runtime.subscribe('paced/#', listener, { qos: 1, pace }, admin)
    while (release === undefined) await turn()
    expect(events.length).toBe(1)
    // A change to a record not yet delivered, and a new one, while paused: the snapshot still holds
    // the old value; both changes come live, after the retained set.
    await runtime.publish('paced/4', { payload: bytes('changed'), retain: true, qos: 1 }, admin)
    await runtime.publish('paced/5', { payload: bytes('new'), retain: true, qos: 1 }, admin)
    for (let i = 0; i < 3; i++) await turn()
    expect(events.length).toBe(1)
    while (events.length < 7) {
      const go = release
      release = undefined
      go?.()
      await turn()
    }
    await sub.ready
    expect(asked).toBe(5)
    // a live event's value may stay bytes (decoded on read): compared as text
    const shown = (v: unknown) => (v instanceof Uint8Array ? text(v) : v)
    expect(events.map((e) => [e.topic, e.retained, shown(e.value)])).toEqual([
      ['paced/0', true, 'v0'],
      ['paced/1', true, 'v1'],
      ['paced/2', true, 'v2'],
      ['paced/3', true, 'v3'],
      ['paced/4', true, 'v4'],
      ['paced/4', false, 'changed'],
      ['paced/5', false, 'new'],
    ])
    sub.close()
  })

  it('stops reading (and lets its snapshot go) when the subscription closes while paused', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    for (let i = 0; i < 3; i++)
      await runtime.publish(`closing/${i}`, { payload: bytes(`"v${i}"`), retain: true, qos: 1 }, admin)
    const { events, listener } = collector()
    let release: (() => void) | undefined
    const pace = () =>
      new Promise<void>((resolve) => {
        release = resolve
      })
    const sub = await runtime.subscribe('closing/#', listener, { qos: 0, pace }, admin)
    while (release === undefined) await turn()
    sub.close()
    release()
    await sub.ready
    expect(events.map((e) => e.topic)).toEqual(['closing/0'])
  })
})
