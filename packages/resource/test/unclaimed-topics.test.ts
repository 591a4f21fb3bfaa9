import { describe, expect, it } from 'vitest'
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
})
