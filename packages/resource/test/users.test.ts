import { describe, expect, it } from 'vitest'
import { ResourceError } from '../src/index.js'
import { admin, runtimeFixture } from './helpers.js'

describe('users', () => {
  it('adds users with scrypt-hashed passwords, authenticates, changes passwords, deletes', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const rita = await runtime.users.add('rita', 'pa55word', { role: 'reader' })
    expect(rita).toEqual({ username: 'rita', role: 'reader', superUser: false })
    await expect(runtime.users.add('rita', 'x')).rejects.toMatchObject({ code: 'CONFLICT' })
    await expect(runtime.users.add('bob', 'x', { role: 'nope' })).rejects.toMatchObject({ code: 'INVALID' })
    const stored = runtime.state<{ password: string }>('__users').get('rita')
    expect(stored?.password).toMatch(/^scrypt\$16384\$8\$1\$/)
    expect(stored?.password).not.toContain('pa55word')
    expect(await runtime.authenticate('rita', 'pa55word')).toEqual(rita)
    expect(await runtime.authenticate('rita', 'wrong')).toBeNull()
    expect(await runtime.authenticate('nobody', 'pa55word')).toBeNull()
    await runtime.users.setPassword('rita', 'new-pass')
    expect(await runtime.authenticate('rita', 'pa55word')).toBeNull()
    expect(await runtime.findUser('rita')).toEqual(rita)
    const root = await runtime.users.add('root', 'r00t', { superUser: true })
    expect(root).toEqual({ username: 'root', role: 'admin', superUser: true })
    expect(
      runtime.users
        .list()
        .map((u) => u.username)
        .sort(),
    ).toEqual(['rita', 'root'])
    // users survive a restart
    const reopened = await f.reopen()
    expect(await reopened.authenticate('rita', 'new-pass')).toEqual(rita)
    expect(await reopened.users.delete('rita')).toBe(true)
    expect(await reopened.users.delete('rita')).toBe(false)
    expect(await reopened.findUser('rita')).toBeNull()
  })

  it('issues HMAC-signed tokens that expire, survive a restart and die with the user', async () => {
    await using f = await runtimeFixture()
    const rita = await f.runtime.users.add('rita', 'pw', { role: 'reader' })
    const token = await f.runtime.issueToken(rita)
    expect(await f.runtime.verifyToken(token)).toEqual(rita)
    const [body, signature] = token.split('.')
    const forged = Buffer.from(JSON.stringify({ u: 'root', iat: 0, exp: Date.now() + 1e6 })).toString(
      'base64url',
    )
    expect(await f.runtime.verifyToken(`${forged}.${signature}`)).toBeNull()
    expect(await f.runtime.verifyToken(`${body}.${signature}x`)).toBeNull()
    expect(await f.runtime.verifyToken('garbage')).toBeNull()
    const expired = await f.runtime.issueToken(rita, { expiresInMs: -1 })
    expect(await f.runtime.verifyToken(expired)).toBeNull()
    const runtime = await f.reopen()
    expect(await runtime.verifyToken(token)).toEqual(rita)
    await runtime.users.delete('rita')
    expect(await runtime.verifyToken(token)).toBeNull()
  })

  it('checks a call against the user it carries', async () => {
    await using f = await runtimeFixture()
    const rita = await f.runtime.users.add('rita', 'pw', { role: 'reader' })
    await expect(f.runtime.put('Dog/x', { name: 'X' }, { user: rita })).rejects.toBeInstanceOf(ResourceError)
    await expect(f.runtime.put('Dog/x', { name: 'X' }, admin)).resolves.toMatchObject({ created: true })
  })
})
