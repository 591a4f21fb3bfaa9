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
