import { describe, expect, it } from 'vitest'
import { admin, code, runtimeFixture } from './helpers.js'

describe('routing', () => {
  it('resolves longest export path first, folds the first segment, coerces ids by type', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    expect(runtime.resolve('Dog/a/b')).toMatchObject({ path: 'Dog', id: 'a/b' })
    expect(runtime.resolve('/dog/123')).toMatchObject({ path: 'Dog', id: '123' })
    expect(runtime.resolve('api/breeds/7')).toMatchObject({ path: 'api/breeds', id: 7 })
    expect(runtime.resolve('API/breeds')).toMatchObject({ path: 'api/breeds', id: undefined })
    expect(runtime.resolve('api/other/7')).toBeNull()
    expect(runtime.resolve('Counter/x')).toMatchObject({ path: 'Counter', id: 'x' })
    expect(() => runtime.resolve('api/breeds/seven')).toThrow(/must be an integer/)
    await runtime.put('api/breeds/7', { name: 'Beagle' }, admin)
    expect(await runtime.get('api/breeds/7', admin)).toMatchObject({ id: 7, value: { name: 'Beagle' } })
    expect(await code(runtime.get('api/breeds/seven', admin))).toBe('INVALID')
  })
})

describe('REST-style access', () => {
  it('validates writes against the schema and leaves the stored record intact on failure', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const created = await runtime.put(
      'Dog/rex',
      { name: 'Rex', age: 3, tags: ['good'], owner: { name: 'Ann' } },
      admin,
    )
    expect(created.created).toBe(true)
    expect((await runtime.put('Dog/rex', { name: 'Rex', age: 4 }, admin)).created).toBe(false)
    for (const bad of [
      { age: 3 },
      { name: 'Rex', age: 'three' },
      { name: 'Rex', age: 2 ** 40 },
      { name: 'Rex', tags: ['ok', 1] },
      { name: 'Rex', owner: { phone: '1' } },
      { name: 'Rex', size: 'huge' },
      { name: 'Rex', id: 'other' },
      'just a string',
    ]) {
      expect(await code(runtime.put('Dog/rex', bad, admin))).toBe('INVALID')
    }
    await expect(runtime.put('Dog/rex', { name: 'Rex', owner: { phone: '1' } }, admin)).rejects.toThrow(
      'owner.name is required',
    )
    // every violation of the record at once, in the message and as details.violations
    const all = await runtime
      .put('Dog/rex', { age: 'three', tags: ['ok', 1, 2], owner: { phone: '1' } }, admin)
      .catch((e: { message: string; details?: { violations?: string[] } }) => e)
    expect((all as { details?: { violations?: string[] } }).details?.violations).toEqual([
      'name is required',
      'age must be an Int (32-bit integer)',
      'tags[1] must be a String',
      'tags[2] must be a String',
      'owner.name is required',
    ])
    expect((all as Error).message).toBe(
      'Dog: name is required; age must be an Int (32-bit integer); tags[1] must be a String; tags[2] must be a String; owner.name is required',
    )
    expect(
      await code(
        runtime.publish(
          'Dog/rex',
          { payload: new TextEncoder().encode('{"age":1}'), retain: true, qos: 1 },
          admin,
        ),
      ),
    ).toBe('INVALID')
    expect(await code(runtime.patch('Dog/rex', { age: 'x' }, admin))).toBe('INVALID')
    const stored = await runtime.get('Dog/rex', admin)
    expect(stored?.value).toMatchObject({ name: 'Rex', age: 4 })
    // the table without attributes accepts anything
    await runtime.put('Anything/x', 'a string', admin)
    await runtime.put('Anything/y', [1, 2], admin)
    expect((await runtime.get('Anything/x', admin))?.value).toBe('a string')
  })

  it('patches, posts with generated ids, honours ifVersion, lists with where/sort/limit/select, deletes', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const first = await runtime.put('Dog/a', { name: 'Alf', age: 5 }, admin)
    const patched = await runtime.patch('Dog/a', { age: 6 }, admin)
    expect(patched.version).toBeGreaterThan(first.version)
    expect(await code(runtime.patch('Dog/a', { age: 7 }, admin, { ifVersion: first.version }))).toBe(
      'CONFLICT',
    )
    expect(await code(runtime.put('Dog/a', { name: 'Alf' }, admin, { ifVersion: first.version }))).toBe(
      'CONFLICT',
    )
    expect(await code(runtime.patch('Dog/none', { age: 1 }, admin))).toBe('NOT_FOUND')
    expect((await runtime.get('Dog/a', admin))?.value).toMatchObject({ name: 'Alf', age: 6 })

    const posted = await runtime.post('Dog', { name: 'Bo', age: 2 }, admin)
    expect(posted.created).toBe(true)
    expect(typeof posted.id).toBe('string')
    const b1 = await runtime.post('api/breeds', { name: 'Pug' }, admin)
    const b2 = await runtime.post('api/breeds', { name: 'Pom' }, admin)
    expect([b1.id, b2.id]).toEqual([1, 2])
    expect(await code(runtime.post('api/breeds', { id: 2, name: 'Dup' }, admin))).toBe('CONFLICT')
    expect(await code(runtime.post('Dog/a', { name: 'x' }, admin))).toBe('METHOD_NOT_ALLOWED')

    await runtime.put('Dog/c', { name: 'Cy', age: 5 }, admin)
    const byAge = await runtime.list('Dog', { where: { age: '5' } }, admin)
    expect(byAge.map((r) => r.id)).toEqual(['c'])
    const sorted = await runtime.list(
      'Dog',
      { sort: [{ attribute: 'age', descending: true }], limit: 2, select: ['name'] },
      admin,
    )
    expect(sorted.map((r) => r.value)).toEqual([{ name: 'Alf' }, { name: 'Cy' }])
    expect((await runtime.list('Dog', { offset: 2 }, admin)).length).toBe(1)
    expect(await code(runtime.list('Nope', {}, admin))).toBe('NOT_FOUND')

    expect(await runtime.delete('Dog/a', admin)).toBe(true)
    expect(await runtime.delete('Dog/a', admin)).toBe(false)
    expect(await runtime.get('Dog/a', admin)).toBeUndefined()
    expect(await code(runtime.get('Dog', admin))).toBe('INVALID')
  })

  it('runs a custom resource that extends a table and one that stands alone', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    await runtime.put('Dog/rex', { name: 'Rex' }, admin)
    expect((await runtime.get('Dog/rex', admin))?.value).toMatchObject({
      name: 'Rex',
      greeting: 'Woof, I am Rex',
    })
    expect((await runtime.get('Counter/9', admin))?.value).toEqual({ counter: '9' })
    expect(await code(runtime.put('Counter/9', {}, admin))).toBe('METHOD_NOT_ALLOWED')
  })

  it('persists records across a restart', async () => {
    await using f = await runtimeFixture()
    await f.runtime.put('Dog/rex', { name: 'Rex' }, admin)
    await f.runtime.publish('plain/t', { payload: new Uint8Array([1, 2]), retain: true, qos: 1 }, admin)
    const runtime = await f.reopen()
    expect((await runtime.get('Dog/rex', admin))?.value).toMatchObject({ name: 'Rex' })
    expect([...((await runtime.get('plain/t', admin))!.value as Uint8Array)]).toEqual([1, 2])
  })
})

describe('ids and topics past the storage key limit', () => {
  it('are refused with KEY_TOO_LONG (not INVALID), for tables and unclaimed topics, by every write', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const long = 'x'.repeat(2500)
    const payload = new TextEncoder().encode('{"name":"Rex"}')
    expect(await code(runtime.put(`Dog/${long}`, { name: 'Rex' }, admin))).toBe('KEY_TOO_LONG')
    expect(await code(runtime.post('Dog', { id: long, name: 'Rex' }, admin))).toBe('KEY_TOO_LONG')
    expect(await code(runtime.put(`plain/${long}`, { a: 1 }, admin))).toBe('KEY_TOO_LONG')
    for (const topic of [`Dog/${long}`, `plain/${long}`]) {
      expect(await code(runtime.publish(topic, { payload, retain: true, qos: 1 }, admin))).toBe(
        'KEY_TOO_LONG',
      )
    }
    const refused = await runtime.put(`Dog/${long}`, { name: 'Rex' }, admin).catch((e) => e)
    expect(refused.details).toEqual({ maxBytes: 1900 })
    // nothing was stored, and reading such an id finds nothing
    expect(await runtime.get(`Dog/${long}`, admin)).toBeUndefined()
  })
})
