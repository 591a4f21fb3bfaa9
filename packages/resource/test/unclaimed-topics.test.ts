import { describe, expect, it, vi } from 'vitest'
import { DELIVERED } from '../src/index.js'
import { admin, bytes, runtimeFixture, text } from './helpers.js'

describe('unclaimed topics (fast paths)', () => {
  it('resolves no route and applies a # rule to every topic except $ topics', async () => {
    await using f = await runtimeFixture({ allowAnonymous: true })
    const { runtime } = f
    const anon = { user: null }
    for (let i = 0; i < 3; i++) {
      expect(runtime.resolve(`ret/${i}`)).toBeNull()
      await runtime.publish(`ret/${i}`, { payload: bytes('x'), retain: true, qos: 1 }, anon)
    }
    expect(runtime.resolve('DOG/1')).toMatchObject({ path: 'Dog', id: '1' })
    expect(runtime.resolve('$SYS/x')).toBeNull()
    await expect(
      runtime.publish('$SYS/x', { payload: bytes('x'), retain: true, qos: 1 }, anon),
    ).rejects.toMatchObject({ code: 'UNAUTHORIZED' })
    expect(text((await runtime.get('ret/2', admin))!.value as Uint8Array)).toBe('x')
  })
})

describe('topic name checks', () => {
  it('refuses an invalid topic name on both publish paths, unless the transport says it checked it', async () => {
    await using f = await runtimeFixture({ allowAnonymous: true })
    const { runtime } = f
    const msg = { payload: bytes('x'), retain: false, qos: 0 as const }
    // Unchecked: the runtime checks (a record's topic and an unclaimed one alike).
    await expect(runtime.publish('ret/+', msg, admin)).rejects.toMatchObject({ code: 'INVALID' })
    await expect(runtime.publish('Dog/#', msg, admin)).rejects.toMatchObject({ code: 'INVALID' })
    // Checked by the transport (MQTT closes with 0x90 itself): the runtime does not check it again,
    // and the publish reaches subscribers; the hot path validates each topic once.
    const seen: string[] = []
    const sub = await runtime.subscribe('#', (e) => void seen.push(e.topic ?? ''), { qos: 0 }, admin)
    await sub.ready
    await runtime.publish('ret/x#', msg, admin, { topicChecked: true })
    await runtime.publish('ret/done', msg, admin, { topicChecked: true })
    expect(seen).toContain('ret/done')
  })

  it('returns DELIVERED itself for a QoS 0 message delivered during the call, and a promise to wait for otherwise', async () => {
    await using f = await runtimeFixture({ allowAnonymous: true })
    const { runtime } = f
    const anon = { user: null }
    const message = (qos: 0 | 1, retain: boolean) => ({ payload: bytes('x'), retain, qos })
    expect(runtime.publish('plain/a', message(0, false), anon)).toBe(DELIVERED) // nobody listening
    const got: string[] = []
    await runtime.subscribe('plain/#', (e) => got.push(e.topic), {}, anon)
    // Once the subscription is live (its initial delivery done), a message reaches it during the call.
    runtime.publish('plain/live', message(0, false), anon)
    await vi.waitFor(() => expect(got).toEqual(['plain/live']))
    expect(runtime.publish('plain/b', message(0, false), anon)).toBe(DELIVERED)
    expect(got).toEqual(['plain/live', 'plain/b'])
    const stored = runtime.publish('plain/c', message(1, false), anon)
    expect(stored).not.toBe(DELIVERED)
    await stored
    const retained = runtime.publish('plain/d', message(0, true), anon)
    expect(retained).not.toBe(DELIVERED)
    await retained
    const refused = runtime.publish('$SYS/x', message(0, false), anon)
    expect(refused).not.toBe(DELIVERED)
    await expect(refused).rejects.toMatchObject({ code: 'UNAUTHORIZED' })
  })
})
