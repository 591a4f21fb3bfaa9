import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Key, RecordResult, ResourceRuntime } from '../src/index.js'
import { Table } from '../src/index.js'
import { admin, bytes, runtimeFixture } from './helpers.js'

const schema = (indexed: { kind?: boolean; owner?: boolean; age?: boolean } = {}) => `
type Pet @table @export {
  id: ID @primaryKey
  kind: String ${indexed.kind === false ? '' : '@indexed'}
  name: String
  age: Int ${indexed.age === false ? '' : '@indexed'}
  owner: String ${indexed.owner ? '@indexed' : ''}
}
`
const options = (indexed?: Parameters<typeof schema>[0]) => ({
  applications: [],
  schemas: [{ source: schema(indexed), file: 'pets.graphql' }],
})

function petTable(runtime: ResourceRuntime): Table {
  const resource = runtime.resolve('Pet')?.resource
  if (!(resource instanceof Table)) throw new Error('Pet is not a table')
  return resource
}

/**
 * The index keys a correct index of `attribute` holds for the stored records: `[kind, value, id]` with
 * kind 0 for null and missing, 2 for numbers, 3 for (short, plain) text.
 */
function expectedIndex(runtime: ResourceRuntime, attribute: string): string[] {
  const keys: string[] = []
  for (const entry of petTable(runtime).table.entries()) {
    const value = (entry.value as Record<string, unknown>)[attribute]
    const key =
      value === undefined || value === null
        ? [0, 0]
        : typeof value === 'number'
          ? [2, value]
          : [3, String(value)]
    keys.push(JSON.stringify([...key, entry.id]))
  }
  return keys.sort()
}

function actualIndex(runtime: ResourceRuntime, attribute: string): string[] {
  const index = petTable(runtime).indexes.get(attribute)
  if (!index) throw new Error(`${attribute} is not indexed`)
  return [...index.table.entries()].map((e) => JSON.stringify(e.id)).sort()
}

/** What `where` must return: the full scan filtered here, in key order. */
async function reference(runtime: ResourceRuntime, where: Record<string, string>): Promise<RecordResult[]> {
  const all = await runtime.list('Pet', {}, admin)
  return all.filter((r) =>
    Object.entries(where).every(([a, v]) => {
      const actual = (r.value as Record<string, unknown>)[a]
      return actual !== undefined && actual !== null && String(actual) === v
    }),
  )
}

/** A small deterministic PRNG (mulberry32), so failures reproduce. */
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const KINDS = ['cat', 'dog', 'bird', 'fish']

/** Puts, patches, deletes, retained publishes and posts, some of them concurrent. */
async function churn(runtime: ResourceRuntime, seed: number, rounds: number): Promise<void> {
  const next = random(seed)
  const pick = <T>(items: T[]) => items[Math.floor(next() * items.length)]!
  for (let i = 0; i < rounds; i++) {
    const id = `p${Math.floor(next() * 30)}`
    const op = next()
    const value = { kind: pick(KINDS), name: `n${i}`, age: Math.floor(next() * 5) }
    if (op < 0.35) await runtime.put(`Pet/${id}`, value, admin)
    else if (op < 0.5) {
      if (await runtime.get(`Pet/${id}`, admin))
        await runtime.patch(`Pet/${id}`, next() < 0.5 ? { kind: pick(KINDS) } : { age: undefined }, admin)
    } else if (op < 0.65) await runtime.delete(`Pet/${id}`, admin)
    else if (op < 0.8)
      await runtime.publish(
        `Pet/${id}`,
        { payload: bytes(JSON.stringify(value)), retain: true, qos: 1 },
        admin,
      )
    else if (op < 0.85)
      await runtime.publish(`Pet/${id}`, { payload: new Uint8Array(0), retain: true, qos: 1 }, admin)
    else if (op < 0.9) await runtime.post('Pet', { ...value, kind: null }, admin)
    else {
      // Overlapping writes to one record in one tick: each must replace the previous index entry.
      await Promise.all(KINDS.map((kind) => runtime.put(`Pet/${id}`, { ...value, kind }, admin)))
    }
  }
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('secondary indexes', () => {
  it('answers equality conditions exactly like a scan after puts, patches, deletes and publishes', async () => {
    await using f = await runtimeFixture(options())
    const { runtime } = f
    await churn(runtime, 7, 300)
    expect(actualIndex(runtime, 'kind')).toEqual(expectedIndex(runtime, 'kind'))
    expect(actualIndex(runtime, 'age')).toEqual(expectedIndex(runtime, 'age'))
    const queries: Record<string, string>[] = [
      ...KINDS.map((kind) => ({ kind })),
      { age: '3' },
      { kind: 'dog', age: '1' },
      { kind: 'dog', name: 'n5' },
      { kind: 'unicorn' },
    ]
    for (const where of queries) {
      expect(await runtime.list('Pet', { where }, admin), JSON.stringify(where)).toEqual(
        await reference(runtime, where),
      )
    }
  }, 30_000) // 300 committed writes: over 5 s on a busy machine

  it('keeps exactly one entry per record when writes to it overlap', async () => {
    await using f = await runtimeFixture(options())
    const { runtime } = f
    await Promise.all([
      ...KINDS.map((kind) => runtime.put('Pet/x', { kind }, admin)),
      runtime.patch('Pet/x', { kind: 'lizard' }, admin).catch(() => {}),
      ...KINDS.map((kind) =>
        runtime.publish('Pet/x', { payload: bytes(JSON.stringify({ kind })), retain: true, qos: 1 }, admin),
      ),
    ])
    const index = actualIndex(runtime, 'kind')
    expect(index).toEqual(expectedIndex(runtime, 'kind'))
    expect(index).toHaveLength(1)
  })

  it('reads the index instead of scanning the table', async () => {
    await using f = await runtimeFixture(options())
    const { runtime } = f
    for (let i = 0; i < 40; i++)
      await runtime.put(`Pet/p${i}`, { kind: i % 10 === 0 ? 'bird' : 'cat', name: `n${i}` }, admin)
    const table = petTable(runtime).table
    const scans = vi.spyOn(table, 'entries')
    const reads = vi.spyOn(table, 'getEntry')
    const birds = await runtime.list('Pet', { where: { kind: 'bird' } }, admin)
    expect(birds.map((r) => r.id)).toEqual(['p0', 'p10', 'p20', 'p30'])
    expect(scans).not.toHaveBeenCalled()
    expect(reads).toHaveBeenCalledTimes(4) // one read per matching record, nothing else visited
    // A condition on an attribute without an index scans (the spy sees it).
    await runtime.list('Pet', { where: { name: 'n3' } }, admin)
    expect(scans).toHaveBeenCalledTimes(1)
  })

  it('uses the most selective index when several conditions are indexed', async () => {
    await using f = await runtimeFixture(options())
    const { runtime } = f
    for (let i = 0; i < 30; i++) await runtime.put(`Pet/p${i}`, { kind: 'cat', age: i === 7 ? 9 : 1 }, admin)
    const reads = vi.spyOn(petTable(runtime).table, 'getEntry')
    const found = await runtime.list('Pet', { where: { kind: 'cat', age: '9' } }, admin)
    expect(found.map((r) => r.id)).toEqual(['p7'])
    expect(reads).toHaveBeenCalledTimes(1)
  })

  it('stays consistent across a restart', async () => {
    await using f = await runtimeFixture(options())
    await churn(f.runtime, 11, 120)
    const before = await f.runtime.list('Pet', { where: { kind: 'cat' } }, admin)
    const runtime = await f.reopen()
    expect(actualIndex(runtime, 'kind')).toEqual(expectedIndex(runtime, 'kind'))
    expect(await runtime.list('Pet', { where: { kind: 'cat' } }, admin)).toEqual(before)
    await churn(runtime, 12, 60)
    expect(actualIndex(runtime, 'kind')).toEqual(expectedIndex(runtime, 'kind'))
  })

  it('builds an index for existing records when a schema adds @indexed, and rebuilds it after a gap', async () => {
    await using f = await runtimeFixture(options({ owner: false }))
    const owners = ['ann', 'bob', 'cy']
    for (let i = 0; i < 25; i++)
      await f.runtime.put(`Pet/p${i}`, { kind: 'cat', owner: owners[i % 3] }, admin)
    let runtime = await f.reopen(options({ owner: true }))
    expect(actualIndex(runtime, 'owner')).toEqual(expectedIndex(runtime, 'owner'))
    const scans = vi.spyOn(petTable(runtime).table, 'entries')
    expect(await runtime.list('Pet', { where: { owner: 'bob' } }, admin)).toEqual(
      await reference(runtime, { owner: 'bob' }),
    )
    expect(scans).toHaveBeenCalledTimes(1) // the reference's full list only
    // Dropping @indexed forgets the index; writes meanwhile do not maintain it; adding it back rebuilds.
    runtime = await f.reopen(options({ owner: false }))
    await runtime.put('Pet/p1', { kind: 'cat', owner: 'dee' }, admin)
    await runtime.delete('Pet/p2', admin)
    runtime = await f.reopen(options({ owner: true }))
    expect(actualIndex(runtime, 'owner')).toEqual(expectedIndex(runtime, 'owner'))
    expect((await runtime.list('Pet', { where: { owner: 'dee' } }, admin)).map((r) => r.id)).toEqual(['p1'])
  })

  it('indexes long and unusual values by their head, numbers as numbers, and null', async () => {
    await using f = await runtimeFixture(options())
    const { runtime } = f
    const long = 'x'.repeat(5000)
    await runtime.put('Pet/a', { kind: long, age: 3 }, admin)
    await runtime.put('Pet/b', { kind: 'tab\there', age: 30 }, admin)
    await runtime.put('Pet/c', { kind: null }, admin)
    await runtime.put('Pet/d', { kind: `${'x'.repeat(4999)}y` }, admin)
    const ids = async (where: Record<string, string>) =>
      (await runtime.list('Pet', { where }, admin)).map((r) => r.id as Key)
    expect(await ids({ kind: long })).toEqual(['a'])
    expect(await ids({ kind: 'tab\there' })).toEqual(['b'])
    expect(await ids({ age: '3' })).toEqual(['a'])
    expect(await ids({ kind: 'null' })).toEqual([])
    const head = 'x'.repeat(200) // keys hold at most 200 characters, and nothing from a control character on
    expect(actualIndex(runtime, 'kind')).toEqual(
      [
        [3, head, 'a'],
        [3, 'tab', 'b'],
        [0, 0, 'c'],
        [3, head, 'd'],
      ]
        .map((k) => JSON.stringify(k))
        .sort(),
    )
  })
})
