import { createHash, createHmac, pbkdf2Sync } from 'node:crypto'
import { waitFor } from '@proj/test-utils'
import { describe, expect, it } from 'vitest'
import {
  type AuthFailure,
  DEFAULT_SCRAM_ITERATIONS,
  openRuntime,
  ResourceError,
  scramCredential,
  type UserChange,
} from '../src/index.js'
import { APP, admin, runtimeFixture } from './helpers.js'

describe('users', () => {
  it('adds users with scrypt-hashed passwords, authenticates, changes passwords, deletes', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const rita = await runtime.users.add('rita', 'pa55word', { role: 'reader' })
    expect(rita).toEqual({ username: 'rita', role: 'reader', superUser: false })
    await expect(runtime.users.add('rita', 'x')).rejects.toMatchObject({ code: 'CONFLICT' })
    await expect(runtime.users.add('bob', 'x', { role: 'nope' })).rejects.toMatchObject({ code: 'INVALID' })
    const stored = runtime.state<{ password: string }>('__users').get('rita')
    expect(stored?.password).toMatch(/^scrypt\$1024\$8\$1\$/) // the fixture's cost (auth.scryptCost)
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

  it('adds a user once when two adds of the same name race (the loser gets CONFLICT, nothing replaced)', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const changes: UserChange[] = []
    runtime.users.onChange((c) => changes.push(c))
    // both pass the "already exists" check while their passwords hash; one must not replace the other
    const results = await Promise.allSettled([
      runtime.users.add('twin', 'first-pw'),
      runtime.users.add('twin', 'second-pw'),
    ])
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected'])
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult
    expect(refused.reason).toMatchObject({ code: 'CONFLICT' })
    const won = results[0]!.status === 'fulfilled' ? 'first-pw' : 'second-pw'
    expect(await runtime.authenticate('twin', won)).not.toBeNull()
    expect(changes.filter((c) => c.type === 'deleted')).toEqual([])
  })

  it('refuses usernames a topic rule could misread (/ + # %), white space and control characters', async () => {
    await using f = await runtimeFixture()
    for (const name of [
      'eve/x',
      '%c',
      '%u',
      'a+b',
      'a#',
      '50%',
      'a b',
      'a:b',
      'tab\tname',
      'nul\u0000',
      '',
      'x'.repeat(129),
    ]) {
      await expect(f.runtime.users.add(name, 'pw'), name).rejects.toMatchObject({ code: 'INVALID' })
    }
    expect(f.runtime.users.list()).toEqual([])
    expect(await f.runtime.users.add('eve_x', 'pw')).toMatchObject({ username: 'eve_x' })
    expect(await f.runtime.users.add('ünïcode.name-1@example', 'pw')).toMatchObject({
      username: 'ünïcode.name-1@example',
    })
  })

  it('backs off failed attempts per address and username without hashing, and reports each failure', async () => {
    const failures: AuthFailure[] = []
    await using f = await runtimeFixture({
      auth: {
        scramIterations: 4096,
        maxFailuresPerUser: 3,
        maxFailuresPerAddress: 6,
        onFailure: (x) => failures.push(x),
      },
    })
    const { runtime } = f
    await runtime.users.add('rita', 'right', { role: 'reader' })
    await runtime.users.add('sam', 'right')
    expect(await runtime.authenticate('rita', 'right', '10.0.0.1')).toMatchObject({ username: 'rita' })
    for (let i = 0; i < 4; i++) expect(await runtime.authenticate('rita', `guess${i}`, '10.0.0.1')).toBeNull()
    // rita is backed off from every address; the answer says how long, and nothing is hashed meanwhile
    const refused = await runtime.authenticate('rita', 'guess', '10.0.0.2').catch((e: unknown) => e)
    expect(refused).toMatchObject({
      code: 'TOO_MANY_REQUESTS',
      details: { retryAfterMs: expect.any(Number) },
    })
    const started = performance.now()
    const many = await Promise.allSettled(
      Array.from({ length: 200 }, () => runtime.authenticate('rita', 'guess', '10.0.0.3')),
    )
    // 200 scrypt runs would take seconds; refusals without hashing take a few milliseconds
    expect(performance.now() - started).toBeLessThan(1000)
    expect(many.every((r) => r.status === 'rejected')).toBe(true)
    // the right password, verified a moment ago, still gets in (cached: its owner is not locked out)
    expect(await runtime.authenticate('rita', 'right', '10.0.0.4')).toMatchObject({ username: 'rita' })
    // another user from another address is not affected; from the failing address once 6 failures are used up
    expect(await runtime.authenticate('sam', 'right', '10.0.0.2')).toMatchObject({ username: 'sam' })
    expect(await runtime.authenticate('nobody', 'x', '10.0.0.1')).toBeNull()
    expect(await runtime.authenticate('nobody2', 'x', '10.0.0.1')).toBeNull()
    expect(await runtime.authenticate('nobody3', 'x', '10.0.0.1')).toBeNull() // the 7th failure from there
    await expect(runtime.authenticate('sam', 'wrong-but-not-checked', '10.0.0.1')).rejects.toMatchObject({
      code: 'TOO_MANY_REQUESTS',
    })
    expect(failures.slice(0, 5)).toEqual([
      { username: 'rita', source: '10.0.0.1', reason: 'wrong password' },
      { username: 'rita', source: '10.0.0.1', reason: 'wrong password' },
      { username: 'rita', source: '10.0.0.1', reason: 'wrong password' },
      { username: 'rita', source: '10.0.0.1', reason: 'wrong password' },
      { username: 'rita', source: '10.0.0.2', reason: 'backed off', retryAfterMs: expect.any(Number) },
    ])
    expect(failures.filter((x) => x.reason === 'unknown user')).toHaveLength(3)
  })

  it('makes SCRAM credentials with 600 000 iterations by default, configurable, and keeps older ones working', async () => {
    // the defaults, not the fixture's cheap ones: one 600 000-iteration credential and a 16384-cost scrypt hash
    await using f = await runtimeFixture({ auth: { scramIterations: undefined, scryptCost: undefined } })
    await f.runtime.users.add('rita', 'pencil')
    expect((await f.runtime.scramCredentials('rita'))?.iterations).toBe(DEFAULT_SCRAM_ITERATIONS)
    expect(f.runtime.state<{ password: string }>('__users').get('rita')?.password).toMatch(/^scrypt\$16384\$/)
    expect(DEFAULT_SCRAM_ITERATIONS).toBe(600_000)
    const fewer = await f.reopen({ auth: { scramIterations: 10_000 } })
    // the stored credential keeps its count; a new password gets the configured one
    expect((await fewer.scramCredentials('rita'))?.iterations).toBe(600_000)
    await fewer.users.setPassword('rita', 'pen')
    expect((await fewer.scramCredentials('rita'))?.iterations).toBe(10_000)
    // below the RFC 7677 floor is raised to it
    const tiny = await f.reopen({ auth: { scramIterations: 1 } })
    await tiny.users.add('sam', 'x')
    expect((await tiny.scramCredentials('sam'))?.iterations).toBe(4096)
  })

  it('revokes bearer tokens with a new password, and with a delete even when the name is added again', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const rita = await runtime.users.add('rita', 'one', { role: 'reader' })
    const first = await runtime.issueToken(rita)
    expect(await runtime.verifyToken(first)).toEqual(rita)
    await runtime.users.setPassword('rita', 'two')
    expect(await runtime.verifyToken(first)).toBeNull()
    const second = await runtime.issueToken(rita)
    expect(await runtime.verifyToken(second)).toEqual(rita)
    // a role change keeps the token and answers with the new role
    await runtime.users.update('rita', { role: 'user' })
    expect(await runtime.verifyToken(second)).toEqual({ ...rita, role: 'user' })
    await runtime.users.delete('rita')
    expect(await runtime.verifyToken(second)).toBeNull()
    await runtime.users.add('rita', 'two', { role: 'reader' })
    expect(await runtime.verifyToken(second)).toBeNull()
    // and a token survives a restart only as long as the password it was issued under
    const third = await runtime.issueToken(rita)
    const reopened = await f.reopen()
    expect(await reopened.verifyToken(third)).toEqual(rita)
  })

  it('tells listeners about deleted users, role and password changes, also those made by another runtime on the store', async () => {
    await using f = await runtimeFixture({ auth: { scramIterations: 4096, userPollMs: 20 } })
    const { runtime } = f
    await runtime.users.add('rita', 'one', { role: 'reader' })
    await runtime.users.add('sam', 'one')
    await runtime.users.add('tom', 'one')
    const changes: UserChange[] = []
    const off = runtime.onUserChange((change) => changes.push(change))
    await runtime.users.setPassword('rita', 'two')
    await runtime.users.update('sam', { role: 'reader' })
    await runtime.users.delete('tom')
    expect(changes).toEqual([
      { type: 'password', username: 'rita' },
      { type: 'role', username: 'sam' },
      { type: 'deleted', username: 'tom' },
    ])
    // another process on the same LMDB (the CLI): noticed by polling
    changes.length = 0
    const other = await openRuntime({
      path: f.path,
      applications: [APP],
      noSync: true,
      auth: { scramIterations: 4096, scryptCost: 1024 },
    })
    try {
      await other.users.delete('rita')
      await other.users.update('sam', { superUser: true })
      await other.users.add('tom', 'again')
      await other.users.delete('tom')
    } finally {
      await other.close()
    }
    await waitFor(() => changes.length >= 2)
    expect(changes).toEqual(
      expect.arrayContaining([
        { type: 'deleted', username: 'rita' },
        { type: 'role', username: 'sam' },
      ]),
    )
    off()
    await runtime.users.delete('sam')
    expect(changes.some((c) => c.username === 'sam' && c.type === 'deleted')).toBe(false)
  })

  it('stores a SCRAM-SHA-256 credential with each password (RFC 5802), none for older users', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    await runtime.users.add('rita', 'pencil', { role: 'reader' })
    const cred = await runtime.scramCredentials('rita')
    expect(cred).not.toBeNull()
    expect(cred!.mechanism).toBe('SCRAM-SHA-256')
    expect(cred!.iterations).toBeGreaterThanOrEqual(4096)
    // Recomputing from the password with the stored salt gives the same keys.
    const again = await scramCredential('pencil', { salt: cred!.salt, iterations: cred!.iterations })
    expect(Buffer.from(again.storedKey).equals(Buffer.from(cred!.storedKey))).toBe(true)
    expect(Buffer.from(again.serverKey).equals(Buffer.from(cred!.serverKey))).toBe(true)
    // The stored record holds no password-equivalent: StoredKey = H(ClientKey), not ClientKey.
    const clientKey = createHmac(
      'sha256',
      pbkdf2Sync('pencil', Buffer.from(cred!.salt), cred!.iterations, 32, 'sha256'),
    )
      .update('Client Key')
      .digest()
    expect(createHash('sha256').update(clientKey).digest().equals(Buffer.from(cred!.storedKey))).toBe(true)
    await runtime.users.setPassword('rita', 'other')
    const changed = await runtime.scramCredentials('rita')
    expect(Buffer.from(changed!.storedKey).equals(Buffer.from(cred!.storedKey))).toBe(false)
    expect(await runtime.scramCredentials('nobody')).toBeNull()
    // A user stored before SCRAM credentials existed: none, and password login still works.
    const store = runtime.state<Record<string, unknown>>('__users')
    const { scram: _drop, ...legacy } = store.get('rita')!
    await store.put('rita', legacy)
    expect(await runtime.scramCredentials('rita')).toBeNull()
    expect(await runtime.authenticate('rita', 'other')).toMatchObject({ username: 'rita' })
    const reopened = await f.reopen()
    expect(await reopened.scramCredentials('rita')).toBeNull()
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
