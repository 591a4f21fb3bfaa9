import { beforeEach, describe, expect, it, vi } from 'vitest'
import { AuthCache } from '../src/auth-cache.js'
import { runtimeFixture } from './helpers.js'

// Counts scrypt runs (password hashing and verification) without changing what they compute.
const calls = vi.hoisted(() => ({ scrypt: 0 }))
vi.mock('node:crypto', async (importOriginal) => {
  const crypto = await importOriginal<typeof import('node:crypto')>()
  const scrypt = (...args: unknown[]) => {
    calls.scrypt++
    return (crypto.scrypt as (...a: unknown[]) => void)(...args)
  }
  return { ...crypto, default: { ...crypto, scrypt }, scrypt }
})

beforeEach(() => {
  calls.scrypt = 0
})

describe('authenticate cache', () => {
  it('verifies a password with scrypt once, then reuses the verification', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const ann = await runtime.users.add('ann', 'secret')
    calls.scrypt = 0
    expect(await runtime.authenticate('ann', 'secret')).toEqual(ann)
    expect(calls.scrypt).toBe(1)
    for (let i = 0; i < 5; i++) expect(await runtime.authenticate('ann', 'secret')).toEqual(ann)
    expect(calls.scrypt).toBe(1)
    // failures are never cached
    expect(await runtime.authenticate('ann', 'wrong')).toBeNull()
    expect(await runtime.authenticate('ann', 'wrong')).toBeNull()
    expect(calls.scrypt).toBe(3)
  })

  it('stops accepting a changed or deleted password at once and reads the role fresh', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    await runtime.users.add('ann', 'secret')
    expect(await runtime.authenticate('ann', 'secret')).not.toBeNull()
    await runtime.users.update('ann', { role: 'admin', superUser: true })
    expect(await runtime.authenticate('ann', 'secret')).toEqual({
      username: 'ann',
      role: 'admin',
      superUser: true,
    })
    await runtime.users.setPassword('ann', 'changed')
    expect(await runtime.authenticate('ann', 'secret')).toBeNull()
    expect(await runtime.authenticate('ann', 'changed')).not.toBeNull()
    await runtime.users.delete('ann')
    expect(await runtime.authenticate('ann', 'changed')).toBeNull()
    // re-created with the old password: verified again, not taken from the cache
    await runtime.users.add('ann', 'changed')
    calls.scrypt = 0
    expect(await runtime.authenticate('ann', 'changed')).not.toBeNull()
    expect(calls.scrypt).toBe(1)
  })

  it('notices a password changed behind its back (another process on the same store)', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    await runtime.users.add('ann', 'secret')
    expect(await runtime.authenticate('ann', 'secret')).not.toBeNull()
    const users = runtime.state<{ password: string }>('__users')
    const other = await runtimeFixture() // a second store only to hash a password the same way
    await other.runtime.users.add('ann', 'other')
    const replaced = other.runtime.state<{ password: string }>('__users').get('ann')!
    await other[Symbol.asyncDispose]()
    await users.put('ann', { ...users.get('ann')!, password: replaced.password })
    expect(await runtime.authenticate('ann', 'secret')).toBeNull()
    expect(await runtime.authenticate('ann', 'other')).not.toBeNull()
  })
})

describe('AuthCache', () => {
  it('expires entries after the TTL, bounds its size, forgets a user', () => {
    let now = 0
    const cache = new AuthCache({ ttlMs: 1000, maxEntries: 2, now: () => now })
    cache.remember('a', 'pw', 'h1')
    expect(cache.has('a', 'pw', 'h1')).toBe(true)
    expect(cache.has('a', 'pw', 'h2')).toBe(false) // another stored hash: the password changed
    expect(cache.has('a', 'pw', 'h1')).toBe(false) // and the entry is gone
    cache.remember('a', 'pw', 'h1')
    now = 1000
    expect(cache.has('a', 'pw', 'h1')).toBe(false)
    cache.remember('a', 'pw', 'h1')
    cache.remember('b', 'pw', 'h1')
    cache.remember('c', 'pw', 'h1')
    expect(cache.size).toBe(2)
    expect(cache.has('a', 'pw', 'h1')).toBe(false)
    expect(cache.has('c', 'pw', 'h1')).toBe(true)
    cache.forget('c')
    expect(cache.has('c', 'pw', 'h1')).toBe(false)
    expect(cache.has('b', 'other', 'h1')).toBe(false)
  })
})
