import { compileQuery, parseQuery } from '@proj/query'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { ListQuery, ResourceRuntime } from '../src/index.js'
import { ResourceError, Table } from '../src/index.js'
import { admin, code, runtimeFixture } from './helpers.js'

const SCHEMA = `
type Product @table @export {
  id: Long @primaryKey
  name: String @indexed
  price: Float @indexed
  listed: Date @indexed
  tags: [String] @indexed
  inStock: Boolean @indexed
  rating: Int
  note: Any @indexed
  brandId: Long @indexed
  brand: Brand @relationship(from: "brandId")
  resellerIds: [Long] @indexed
  resellers: [Reseller] @relationship(from: "resellerIds")
}
type Brand @table @export {
  id: Long @primaryKey
  name: String @indexed
  country: String
  products: [Product] @relationship(to: "brandId")
}
type Reseller @table @export {
  id: Long @primaryKey
  name: String
}
type Strict @table(scan: false) @export {
  id: ID @primaryKey
  code: String @indexed
  other: String
}
`
const TYPES: Record<string, string> = {
  id: 'Long',
  name: 'String',
  price: 'Float',
  listed: 'Date',
  tags: 'String',
  inStock: 'Boolean',
  rating: 'Int',
  brandId: 'Long',
  resellerIds: 'Long',
}
const types = (path: readonly string[]) => (path.length === 1 ? TYPES[path[0]!] : undefined)
const options = { applications: [], schemas: [{ source: SCHEMA, file: 'shop.graphql' }] }

function table(runtime: ResourceRuntime, name: string): Table {
  const resource = runtime.resolve(name)?.resource
  if (!(resource instanceof Table)) throw new Error(`${name} is not a table`)
  return resource
}

const list = async (runtime: ResourceRuntime, path: string, text: string, extra: ListQuery = {}) =>
  runtime.list(path, { ...extra, query: parseQuery(text) }, admin)
const ids = async (runtime: ResourceRuntime, path: string, text: string) =>
  (await list(runtime, path, text)).map((r) => r.id)

/** A small deterministic PRNG (mulberry32). */
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

// Long texts and texts with control characters are cut in index keys: ranges over them must still be exact.
const NAMES = [
  'Keyboard',
  'Key',
  'Mouse',
  'mouse pad',
  'Monitor',
  '',
  'Zed',
  'é',
  'x'.repeat(250),
  `${'x'.repeat(230)}y`,
  'tab\there',
  'tab\tzzz',
]
const TAGS = ['fast', 'slow', 'new', 'used']
const DATES = ['2020-01-01T00:00:00.000Z', '2021-06-15T12:00:00.000Z', '2022-12-31T00:00:00.000Z']

/** Products with every kind of value (missing, null, arrays, dates, long text), then some churn. */
async function seed(runtime: ResourceRuntime, seedValue: number, count: number): Promise<void> {
  const next = random(seedValue)
  const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!
  const maybe = <T>(value: () => T): T | null | undefined => {
    const r = next()
    return r < 0.1 ? undefined : r < 0.2 ? null : value()
  }
  const product = () => {
    const value: Record<string, unknown> = {}
    const fields: Record<string, unknown> = {
      name: maybe(() => pick(NAMES)),
      price: maybe(() => Math.floor(next() * 40) / 2),
      listed: maybe(() => pick(DATES)),
      tags: maybe(() => TAGS.filter(() => next() < 0.4)),
      inStock: maybe(() => next() < 0.5),
      rating: maybe(() => Math.floor(next() * 6)),
      note: maybe(() => pick<unknown>([1, 2, 'one', 'two', true, ['x', 3]])),
      brandId: maybe(() => 1 + Math.floor(next() * 4)),
    }
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) value[k] = v
    return value
  }
  for (let i = 1; i <= count; i++) await runtime.put(`Product/${i}`, product(), admin)
  for (let i = 0; i < count / 3; i++) {
    const id = 1 + Math.floor(next() * count)
    const r = next()
    if (r < 0.4) await runtime.put(`Product/${id}`, product(), admin)
    else if (r < 0.7 && (await runtime.get(`Product/${id}`, admin))) {
      await runtime.patch(
        `Product/${id}`,
        { price: next() < 0.3 ? null : Math.floor(next() * 40) / 2 },
        admin,
      )
    } else await runtime.delete(`Product/${id}`, admin)
  }
}

// Random queries over the Product attributes, written as users write them.
const enc = (v: string) =>
  encodeURIComponent(v).replaceAll('*', '%2A').replaceAll('(', '%28').replaceAll(')', '%29')
const textValue = fc.constantFrom(...NAMES, 'K', 'M', 'z').map(enc)
const numberValue = fc.constantFrom('0', '1', '2.5', '5', '10', '19.5', '-1', '100')
const condition = fc.oneof(
  fc
    .tuple(
      fc.constantFrom('name', 'note'),
      fc.constantFrom('==', '!=', '=lt=', '=le=', '=gt=', '=ge=', '=sw=', '==='),
      textValue,
    )
    .map(([a, op, v]) => `${a}${op}${v}`),
  fc
    .tuple(
      fc.constantFrom('price', 'rating', 'brandId', 'note'),
      fc.constantFrom('==', '!=', '=lt=', '=le=', '=gt=', '=ge='),
      numberValue,
    )
    .map(([a, op, v]) => `${a}${op}${v}`),
  fc
    .tuple(fc.constantFrom('price', 'rating'), numberValue, numberValue)
    .map(([a, lo, hi]) => `[${a}=ge=${lo}&lt=${hi}]`),
  fc
    .tuple(
      fc.constantFrom('name', 'price', 'listed', 'tags', 'inStock', 'note', 'brandId'),
      fc.constantFrom('==null', '!=null'),
    )
    .map(([a, v]) => `${a}${v}`),
  fc
    .tuple(fc.constantFrom('==', '!=', '=gt=', '=lt='), fc.constantFrom(...TAGS))
    .map(([op, v]) => `tags${op}${v}`),
  fc
    .tuple(fc.constantFrom('=gt=', '=le=', '=='), fc.constantFrom(...DATES))
    .map(([op, v]) => `listed${op}${enc(v)}`),
  fc.constantFrom(
    'inStock==true',
    'inStock==false',
    'inStock!=true',
    'name==Key*',
    'name=ct=ous',
    'name=ew=e',
  ),
  fc.constantFrom(
    '[tags=gt=g&tags=lt=p]',
    '[price=gt=5&price=gt=2&price=le=15]',
    '[id=ge=5&id=lt=20]',
    'id==7',
  ),
)
const filterText: fc.Arbitrary<string> = fc.letrec<{ node: string }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    condition,
    fc
      .tuple(fc.constantFrom('&', '|'), fc.array(tie('node'), { minLength: 2, maxLength: 3 }))
      .map(([join, children]) => `(${children.join(join)})`),
  ),
})).node

describe('list queries', () => {
  it('return with indexes exactly what a filter over all records returns (random data and queries)', async () => {
    await using f = await runtimeFixture(options)
    const { runtime } = f
    await seed(runtime, 1, 90)
    const all = await runtime.list('Product', {}, admin)
    await fc.assert(
      fc.asyncProperty(filterText, fc.boolean(), async (text, sorted) => {
        const query = sorted ? `${text}&sort(-price,name)` : text
        const { matches, compare } = compileQuery(query, { types })
        let expected = all.filter((r) => matches(r.value))
        if (compare)
          expected = [...expected].sort((a, b) => compare(a.value, b.value) || Number(a.id) - Number(b.id))
        expect(await ids(runtime, 'Product', query), query).toEqual(expected.map((r) => r.id))
      }),
      { numRuns: 300 },
    )
  }, 180_000)

  it('reads only the matching keys of a range on an indexed attribute', async () => {
    await using f = await runtimeFixture(options)
    const { runtime } = f
    for (let i = 0; i < 300; i++)
      await runtime.put(`Product/${i + 1}`, { name: `p${i}`, price: i, rating: i % 5 }, admin)
    const products = table(runtime, 'Product')
    const before = { ...products.reads }
    const found = await list(runtime, 'Product', 'price=ge=100&lt=110&rating==3')
    const read = { keys: products.reads.keys - before.keys, records: products.reads.records - before.records }
    expect(found.map((r) => (r.value as { price: number }).price)).toEqual([103, 108])
    // 10 keys in [100, 110) plus the first key after it, which ends the scan; one record per key
    expect(read).toEqual({ keys: 11, records: 10 })
    // a condition on an attribute without an index reads every record
    const scanBefore = products.reads.records
    await list(runtime, 'Product', 'rating==3')
    expect(products.reads.records - scanBefore).toBe(300)
  })

  it('scans the most selective indexed condition first, range or equality, and filters by the others', async () => {
    await using f = await runtimeFixture(options)
    const { runtime } = f
    // 200 products, prices 0..199: brand 3 on five of them (every 40th), brand 1 on the others
    for (let i = 0; i < 200; i++)
      await runtime.put(`Product/${i + 1}`, { name: `p${i}`, price: i, brandId: i % 40 === 0 ? 3 : 1 }, admin)
    const products = table(runtime, 'Product')
    const readBy = async (text: string) => {
      const before = products.reads.records
      const found = await list(runtime, 'Product', text)
      return { found: found.length, records: products.reads.records - before }
    }
    // the range matches 3 records and brand 1 195: the range is scanned
    expect(await readBy('brandId==1&price=ge=10&lt=13')).toEqual({ found: 3, records: 3 })
    // the same conditions the other way round: the order in the query does not decide
    expect(await readBy('price=ge=10&lt=13&brandId==1')).toEqual({ found: 3, records: 3 })
    // brand 3 matches 5 records and the range 150: the equality is scanned
    expect(await readBy('price=ge=0&lt=150&brandId==3')).toEqual({ found: 4, records: 5 })
  })

  it('serves equality, ranges, prefixes, dates, booleans, lists and null from indexes', async () => {
    await using f = await runtimeFixture(options)
    const { runtime } = f
    await runtime.put(
      'Product/1',
      { name: 'Keyboard', price: 150, tags: ['fast', 'new'], listed: '2024-03-01T00:00:00Z', inStock: true },
      admin,
    )
    await runtime.put(
      'Product/2',
      { name: 'Key', price: 99.5, tags: ['slow'], listed: '2023-01-01T00:00:00Z', inStock: false },
      admin,
    )
    await runtime.put(
      'Product/3',
      { name: 'Mouse', price: null, tags: [], listed: new Date('2024-06-01').toISOString() },
      admin,
    )
    const products = table(runtime, 'Product')
    const cases: [string, number[]][] = [
      ['price=gt=100&lt=200', [1]],
      ['price=le=99.5', [2]],
      ['name==Key*', [1, 2]],
      ['name=sw=Keyb', [1]],
      ['tags==fast', [1]],
      ['tags==slow|tags==new', [1, 2]],
      ['listed=gt=2024-01-01', [1, 3]],
      ['inStock==true', [1]],
      ['price==null', [3]],
      ['inStock==null', [3]],
      ['tags==null', []],
    ]
    for (const [text, expected] of cases) {
      const scans = products.reads.records
      expect(await ids(runtime, 'Product', text), text).toEqual(expected)
      expect(products.reads.records - scans, `${text} reads no more records than it returns`).toBe(
        expected.length,
      )
    }
  })

  it('keeps keyset pagination working with sort()', async () => {
    await using f = await runtimeFixture(options)
    const { runtime } = f
    for (let i = 1; i <= 23; i++)
      await runtime.put(`Product/${i}`, { name: `n${i % 4}`, price: i % 5 === 0 ? null : i % 7 }, admin)
    for (const text of [
      'price=ge=1&sort(-price,name)&limit(4)',
      'sort(price)&limit(5)',
      'name=sw=n&limit(6)',
    ]) {
      const whole = (
        await runtime.list('Product', { query: parseQuery(text.replace(/&limit\(\d+\)/, '')) }, admin)
      ).map((r) => r.id)
      const seen: unknown[] = []
      let after: string | undefined
      for (let guard = 0; guard < 20; guard++) {
        const page = await runtime.listPage(
          'Product',
          { query: parseQuery(after ? `${text}&after=${after}` : text) },
          admin,
        )
        seen.push(...page.items.map((r) => r.id))
        if (!page.next) break
        after = page.next
      }
      expect(seen, text).toEqual(whole)
    }
  })

  it('projects select() as values, objects or arrays', async () => {
    await using f = await runtimeFixture(options)
    const { runtime } = f
    await runtime.put('Product/1', { name: 'A', price: 1 }, admin)
    await runtime.put('Product/2', { name: 'B' }, admin)
    const values = async (text: string) => (await list(runtime, 'Product', text)).map((r) => r.value)
    expect(await values('select(name)')).toEqual(['A', 'B'])
    expect(await values('select(name,)')).toEqual([{ name: 'A' }, { name: 'B' }])
    expect(await values('select([name,price])')).toEqual([
      ['A', 1],
      ['B', null],
    ])
    expect(await values('price=gt=0&select(id,price)')).toEqual([{ id: 1, price: 1 }])
  })

  it('names the condition and position of a value that does not convert', async () => {
    await using f = await runtimeFixture(options)
    const error = await list(f.runtime, 'Product', 'name==x&price=gt=cheap').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ResourceError)
    expect((error as ResourceError).code).toBe('INVALID')
    expect((error as ResourceError).details).toMatchObject({
      code: 'QUERY_INVALID_VALUE',
      position: 8,
      condition: 'price=gt=cheap',
    })
  })

  it('refuses a query that would scan a table declared @table(scan: false)', async () => {
    await using f = await runtimeFixture(options)
    const { runtime } = f
    await runtime.put('Strict/a', { code: 'x', other: 'y' }, admin)
    expect(await ids(runtime, 'Strict', 'code==x&other==y')).toEqual(['a'])
    expect(await ids(runtime, 'Strict', 'id==a')).toEqual(['a'])
    expect(await ids(runtime, 'Strict', 'limit(5)')).toEqual(['a']) // no condition: a page in key order
    const error = await list(runtime, 'Strict', 'code==x|other==y').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ResourceError)
    expect((error as ResourceError).code).toBe('INVALID')
    expect((error as ResourceError).message).toMatch(/scan: false.*'code==x' at position 0/)
  })
})

describe('relationships', () => {
  async function shop(runtime: ResourceRuntime) {
    await runtime.put('Brand/1', { name: 'Acme', country: 'NL' }, admin)
    await runtime.put('Brand/2', { name: 'Globex', country: 'US' }, admin)
    await runtime.put('Reseller/1', { name: 'Cool Shop' }, admin)
    await runtime.put('Reseller/2', { name: 'Other Shop' }, admin)
    await runtime.put('Product/1', { name: 'Keyboard', brandId: 1, resellerIds: [2, 1] }, admin)
    await runtime.put('Product/2', { name: 'Mouse', brandId: 2, resellerIds: [2] }, admin)
    await runtime.put('Product/3', { name: 'Cable', brandId: 1 }, admin)
    await runtime.put('Product/4', { name: 'Orphan', brandId: 9 }, admin)
    for (let i = 10; i < 60; i++) await runtime.put(`Product/${i}`, { name: `filler${i}`, brandId: 2 }, admin)
  }

  it('queries through from and to relationships, by the indexes of both tables', async () => {
    await using f = await runtimeFixture(options)
    const { runtime } = f
    await shop(runtime)
    const products = table(runtime, 'Product')
    const before = products.reads.records
    expect(await ids(runtime, 'Product', 'brand.name=Acme')).toEqual([1, 3])
    // one brand by Brand.name, then its two products by Product.brandId: no scan of either table
    expect(products.reads.records - before).toBe(3)
    expect(await ids(runtime, 'Product', 'resellers.name==Cool+Shop')).toEqual([1])
    expect(await ids(runtime, 'Product', 'brand.country==US&name==Mouse')).toEqual([2])
    expect(await ids(runtime, 'Brand', 'products.name=Keyboard')).toEqual([1])
    expect(await ids(runtime, 'Brand', 'products.name=sw=filler')).toEqual([2])
    expect(await ids(runtime, 'Product', 'brand.name==null')).toEqual([4])
  })

  it('includes related records in nested selects (left join: a missing one is left out)', async () => {
    await using f = await runtimeFixture(options)
    const { runtime } = f
    await shop(runtime)
    const values = async (path: string, text: string) => (await list(runtime, path, text)).map((r) => r.value)
    expect(await values('Product', 'id=le=4&select(name,brand{name})')).toEqual([
      { name: 'Keyboard', brand: { name: 'Acme' } },
      { name: 'Mouse', brand: { name: 'Globex' } },
      { name: 'Cable', brand: { name: 'Acme' } },
      { name: 'Orphan' },
    ])
    expect(await values('Product', 'id==1&select(name,brand)')).toEqual([
      { name: 'Keyboard', brand: { id: 1, name: 'Acme', country: 'NL' } },
    ])
    expect(await values('Product', 'id==1&select(id,resellers{name})')).toEqual([
      { id: 1, resellers: [{ name: 'Other Shop' }, { name: 'Cool Shop' }] },
    ])
    expect(await values('Brand', 'id==1&select(name,products{name})')).toEqual([
      { name: 'Acme', products: [{ name: 'Keyboard' }, { name: 'Cable' }] },
    ])
    expect(await values('Product', 'brand.name=Acme&sort(-name)&select(name)')).toEqual(['Keyboard', 'Cable'])
  })

  it('reads a related table only with permission to read it', async () => {
    await using f = await runtimeFixture({
      ...options,
      roles: [
        { name: 'shopper', tables: { Product: { read: true, insert: false, update: false, delete: false } } },
      ],
    })
    const { runtime } = f
    await shop(runtime)
    const shopper = { user: { username: 'sam', role: 'shopper', superUser: false } }
    const query = (text: string) => runtime.list('Product', { query: parseQuery(text) }, shopper)
    expect((await query('name==Mouse&select(name)')).map((r) => r.value)).toEqual(['Mouse'])
    expect(await code(query('brand.name=Acme'))).toBe('FORBIDDEN')
    expect(await code(query('name==Mouse&select(name,brand{name})'))).toBe('FORBIDDEN')
    expect(await code(runtime.get('Product/1.brand', shopper))).toBe('FORBIDDEN')
  })

  it('reads one declared attribute with Table/id.attribute', async () => {
    await using f = await runtimeFixture(options)
    const { runtime } = f
    await shop(runtime)
    await runtime.put('Strict/a.b', { code: 'dotted' }, admin)
    await runtime.put('Strict/a', { code: 'plain' }, admin)
    expect((await runtime.get('Product/1.name', admin))?.value).toBe('Keyboard')
    expect((await runtime.get('Product/1.price', admin))?.value).toBeNull()
    expect((await runtime.get('Product/1.brand', admin))?.value).toEqual({
      id: 1,
      name: 'Acme',
      country: 'NL',
    })
    expect(await runtime.get('Product/99.name', admin)).toBeUndefined()
    expect(await code(runtime.get('Product/1.nothing', admin))).toBe('INVALID') // not an attribute: the id "1.nothing"
    expect((await runtime.get('Strict/a.code', admin))?.value).toBe('plain')
    expect((await runtime.get('Strict/a.b', admin))?.value).toEqual({ id: 'a.b', code: 'dotted' }) // an id with a dot wins
  })
})
