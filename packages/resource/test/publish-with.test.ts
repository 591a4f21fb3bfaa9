import { describe, expect, it } from 'vitest'
import type { PublishListener, RuntimeEvent } from '../src/index.js'
import { admin, bytes, runtimeFixture, text } from './helpers.js'

/** A PublishListener that records what it was told, and a promise of it. */
function listen(): PublishListener & { told: Promise<unknown>; calls: number } {
  let resolve!: (error: unknown) => void
  const told = new Promise<unknown>((r) => {
    resolve = r
  })
  const listener = {
    told,
    calls: 0,
    publishSettled(error: unknown) {
      listener.calls++
      resolve(error)
    },
  }
  return listener
}

describe('runtime.publishWith: a publish told to a listener', () => {
  it('tells a plain topic publish once it is committed: retained put, message, retained delete', async () => {
    await using f = await runtimeFixture({ allowAnonymous: true })
    const { runtime } = f
    const anon = { user: null, clientId: 'c1' }
    const seen: RuntimeEvent[] = []
    const sub = await runtime.subscribe('ret/#', (e) => void seen.push(e as RuntimeEvent), { qos: 1 }, admin)
    await sub.ready
    const put = listen()
    runtime.publishWith('ret/a', { payload: bytes('kept'), retain: true, qos: 1 }, anon, undefined, put)
    expect(put.calls).toBe(0)
    expect(await put.told).toBeUndefined()
    // committed: readable, and the subscriber heard it before the publisher was told
    expect(text((await runtime.get('ret/a', admin))!.value as Uint8Array)).toBe('kept')
    expect(seen.map((e) => [e.type, e.topic, e.meta?.qos, e.meta?.clientId])).toEqual([
      ['put', 'ret/a', 1, 'c1'],
    ])
    const message = listen()
    runtime.publishWith('ret/b', { payload: bytes('m'), retain: false, qos: 1 }, anon, undefined, message)
    expect(await message.told).toBeUndefined()
    expect(seen.at(-1)).toMatchObject({ type: 'message', topic: 'ret/b' })
    expect(runtime.storage.log.lastCursor).toBeGreaterThan(0)
    const del = listen()
    runtime.publishWith('ret/a', { payload: bytes(''), retain: true, qos: 1 }, anon, undefined, del)
    expect(await del.told).toBeUndefined()
    expect(await runtime.get('ret/a', admin)).toBeUndefined()
    expect(put.calls + message.calls + del.calls).toBe(3)
  })

  it('tells a refused publish the ResourceError publish would reject with, after the caller returned', async () => {
    await using f = await runtimeFixture({ allowAnonymous: false })
    const { runtime } = f
    const refused = listen()
    runtime.publishWith(
      'ret/x',
      { payload: bytes('x'), retain: true, qos: 1 },
      { user: null },
      undefined,
      refused,
    )
    expect(refused.calls).toBe(0)
    expect(await refused.told).toMatchObject({ code: 'UNAUTHORIZED' })
    const invalid = listen()
    runtime.publishWith('ret/+', { payload: bytes('x'), retain: false, qos: 1 }, admin, undefined, invalid)
    expect(await invalid.told).toMatchObject({ code: 'INVALID' })
    expect(await runtime.get('ret/x', admin)).toBeUndefined()
  })

  it('tells a publish to a table record and a QoS 0 message through the promise path', async () => {
    await using f = await runtimeFixture({ allowAnonymous: true })
    const { runtime } = f
    const record = listen()
    runtime.publishWith(
      'Dog/7',
      { payload: bytes('{"name":"Rex"}'), retain: true, qos: 1 },
      admin,
      undefined,
      record,
    )
    expect(await record.told).toBeUndefined()
    expect((await runtime.get('Dog/7', admin))?.value).toMatchObject({ name: 'Rex' })
    const qos0 = listen()
    runtime.publishWith('ret/q', { payload: bytes('x'), retain: false, qos: 0 }, admin, undefined, qos0)
    expect(await qos0.told).toBeUndefined()
  })

  it('reports a listener that throws to onError', async () => {
    const errors: unknown[] = []
    await using f = await runtimeFixture({ allowAnonymous: true, onError: (e: unknown) => errors.push(e) })
    const { runtime } = f
    const after = listen()
    runtime.publishWith('ret/t', { payload: bytes('x'), retain: false, qos: 1 }, admin, undefined, {
      publishSettled() {
        throw new Error('listener exploded')
      },
    })
    runtime.publishWith('ret/u', { payload: bytes('x'), retain: false, qos: 1 }, admin, undefined, after)
    expect(await after.told).toBeUndefined()
    await expect.poll(() => errors).toEqual([expect.objectContaining({ message: 'listener exploded' })])
  })
})
