import { describe, expect, it } from 'vitest'
import type { Key, ListQuery, ResourceRuntime } from '../src/index.js'
import { ResourceError } from '../src/index.js'
import { admin, runtimeFixture } from './helpers.js'

const SCHEMA = `
type Pet @table @export {
  id: ID @primaryKey
  kind: String @indexed
  age: Int
}
type Num @table @export {
  id: Int @primaryKey
  n: Int
}
`
const options = { applications: [], schemas: [{ source: SCHEMA, file: 'pets.graphql' }] }

/** Follows `next` from the first page to the last; returns the ids of each page. */
async function pages(runtime: ResourceRuntime, path: string, query: ListQuery): Promise<Key[][]> {
  const out: Key[][] = []
  let after: string | undefined
  for (let guard = 0; guard < 100; guard++) {
    const page = await runtime.listPage(path, after === undefined ? query : { ...query, after }, admin)
    out.push(page.items.map((r) => r.id))
    if (page.next === undefined) return out
    after = page.next
  }
  throw new Error('pagination does not end')
}

async function seed(runtime: ResourceRuntime): Promise<void> {
  for (let i = 0; i < 25; i++) {
    const id = `p${String(i).padStart(2, '0')}`
    await runtime.put(`Pet/${id}`, { kind: i % 3 === 0 ? 'cat' : 'dog', age: i % 4 }, admin)
  }
}

describe('list cursors', () => {
  it('pages through a table in key order with a next cursor until the end', async () => {
    await using f = await runtimeFixture(options)
    await seed(f.runtime)
    const all = (await f.runtime.list('Pet', {}, admin)).map((r) => r.id)
    const result = await pages(f.runtime, 'Pet', { limit: 10 })
    expect(result.map((p) => p.length)).toEqual([10, 10, 5])
    expect(result.flat()).toEqual(all)
    // An exact multiple of the limit: the last full page has no next.
    expect((await pages(f.runtime, 'Pet', { limit: 5 })).map((p) => p.length)).toEqual([5, 5, 5, 5, 5])
    expect((await f.runtime.listPage('Pet', {}, admin)).next).toBeUndefined()
  })

  it('pages through an indexed condition and through a sort with ties', async () => {
    await using f = await runtimeFixture(options)
    await seed(f.runtime)
    const queries: ListQuery[] = [
      { where: { kind: 'dog' } },
      { where: { age: '1' } },
      { sort: [{ attribute: 'age', descending: true }] },
      { where: { kind: 'dog' }, sort: [{ attribute: 'age' }, { attribute: 'id', descending: true }] },
    ]
    for (const query of queries) {
      const all = (await f.runtime.list('Pet', query, admin)).map((r) => r.id)
      for (const limit of [1, 4, 7]) {
        const result = await pages(f.runtime, 'Pet', { ...query, limit })
        expect(result.flat(), `${JSON.stringify(query)} limit ${limit}`).toEqual(all)
        expect(result.slice(0, -1).every((p) => p.length === limit)).toBe(true)
      }
    }
  })

  it('continues after the cursor when records are added or removed before it (keyset, not offset)', async () => {
    await using f = await runtimeFixture(options)
    const { runtime } = f
    await seed(runtime)
    const first = await runtime.listPage('Pet', { limit: 5 }, admin)
    expect(first.items.at(-1)?.id).toBe('p04')
    await runtime.put('Pet/p00a', { kind: 'cat' }, admin) // sorts before the cursor
    await runtime.delete('Pet/p01', admin)
    await runtime.delete('Pet/p04', admin) // the cursor's own record
    const second = await runtime.listPage('Pet', { limit: 5, after: first.next! }, admin)
    expect(second.items.map((r) => r.id)).toEqual(['p05', 'p06', 'p07', 'p08', 'p09'])
    // offset applies after the cursor; list() honours `after` too
    const skipped = await runtime.list('Pet', { limit: 2, offset: 3, after: first.next! }, admin)
    expect(skipped.map((r) => r.id)).toEqual(['p08', 'p09'])
  })

  it('orders numeric ids numerically across pages', async () => {
    await using f = await runtimeFixture(options)
    for (const id of [1, 2, 10, 11, 100]) await f.runtime.put(`Num/${id}`, { n: id }, admin)
    expect((await pages(f.runtime, 'Num', { limit: 2 })).flat()).toEqual([1, 2, 10, 11, 100])
  })

  it('rejects a cursor it did not make with INVALID', async () => {
    await using f = await runtimeFixture(options)
    for (const after of ['%%%', Buffer.from('{"x":1}').toString('base64url'), '']) {
      const error = await f.runtime.listPage('Pet', { after }, admin).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(ResourceError)
      expect((error as ResourceError).code).toBe('INVALID')
    }
  })

  it('keeps a custom list() of a table subclass, without a cursor', async () => {
    await using f = await runtimeFixture()
    await f.runtime.put('Dog/a', { name: 'A' }, admin)
    await f.runtime.put('Dog/b', { name: 'B' }, admin)
    const dog = f.runtime.resolve('Dog')!.resource
    dog.list = async () => [{ id: 'custom', value: {}, version: 0 }]
    expect(await f.runtime.listPage('Dog', { limit: 1 }, admin)).toEqual({
      items: [{ id: 'custom', value: {}, version: 0 }],
    })
  })
})
