import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openTestRuntime, type TestRuntime } from './support/runtime.js'
import { startServer, type TestServer } from './support/server.js'

const SCHEMA = `
type Product @table @export {
  id: Long @primaryKey
  name: String @indexed
  price: Float @indexed
  rating: Int
  featured: Boolean
  tags: [String] @indexed
  brandId: Long @indexed
  brand: Brand @relationship(from: "brandId")
}
type Brand @table @export {
  id: Long @primaryKey
  name: String @indexed
  products: [Product] @relationship(to: "brandId")
}
`

let rt: TestRuntime
let srv: TestServer
const auth = { authorization: `Basic ${Buffer.from('ann:secret').toString('base64')}` }

beforeEach(async () => {
  rt = await openTestRuntime({
    schemas: [{ source: SCHEMA, file: 'shop.graphql' }],
    roles: [{ name: 'reader', tables: { Product: { read: true } } }],
  })
  srv = await startServer({ runtime: rt.runtime })
  const ctx = { user: { username: 'ann', role: 'admin', superUser: true } }
  await rt.runtime.put('Brand/1', { name: 'Acme' }, ctx)
  await rt.runtime.put('Brand/2', { name: 'Globex' }, ctx)
  const products = [
    { name: 'Keyboard', price: 150, rating: 4, featured: false, tags: ['fast', 'new'], brandId: 1 },
    { name: 'Key', price: 99.5, rating: 5, featured: false, tags: ['slow'], brandId: 2 },
    { name: 'Mouse', price: 20, rating: 3, featured: true, tags: [], brandId: 1 },
    { name: 'Monitor', price: 250, rating: 5, featured: false, brandId: 2 },
    { name: 'Cable', price: null, rating: 2, featured: false },
  ]
  for (const [i, p] of products.entries()) await rt.runtime.put(`Product/${i + 1}`, p, ctx)
})

afterEach(async () => {
  await srv.close()
  await rt.close()
})

async function get(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${srv.url}${path}`, { headers: { ...auth, ...headers } })
}

async function body(path: string): Promise<unknown> {
  const res = await get(path)
  expect(res.status, path).toBe(200)
  return res.json()
}

describe('GET /Table/?query', () => {
  it.each<[string, unknown]>([
    ['/Product/?price=gt=100&lt=200&select(name)', ['Keyboard']],
    [
      '/Product/?price=gt=100&sort(-price)&select(name,price)',
      [
        { name: 'Monitor', price: 250 },
        { name: 'Keyboard', price: 150 },
      ],
    ],
    ['/Product/?name==Key*&select(name)', ['Keyboard', 'Key']],
    ['/Product/?rating=5|featured=true&select(name)', ['Key', 'Mouse', 'Monitor']],
    ['/Product/?rating=5|(price=gt=100&price=lt=200)&select(name)', ['Keyboard', 'Key', 'Monitor']],
    ['/Product/?rating=gt=2&[tags=fast|tags=slow]&select(name)', ['Keyboard', 'Key']],
    ['/Product/?price==null&select(name)', ['Cable']],
    ['/Product/?price!=150&rating=ge=4&select(name)', ['Key', 'Monitor']],
    [
      '/Product/?select([name,rating])&sort(rating,-name)&limit(1,3)',
      [
        ['Mouse', 3],
        ['Keyboard', 4],
      ],
    ],
    [
      '/Product/?brand.name=Acme&select(name,brand{name})',
      [
        { name: 'Keyboard', brand: { name: 'Acme' } },
        { name: 'Mouse', brand: { name: 'Acme' } },
      ],
    ],
    ['/Brand/?products.name=Monitor&select(name)', ['Globex']],
    ['/Product/?name=Cool+Shop', []],
    // today's parameters
    ['/Product/?rating=5&select=name&sort=-price&limit=1', [{ name: 'Monitor' }]],
  ])('%s', async (path, expected) => {
    expect(await body(path)).toEqual(expected)
  })

  it('answers 400 naming the condition and its position', async () => {
    for (const [path, position, condition] of [
      ['/Product/?rating=5|featured=true&price=1', 22, 'rating=5|featured=true&price=1'],
      ['/Product/?price=gt=cheap', 0, 'price=gt=cheap'],
      ['/Product/?name=Key&(rating=5', 9, '(rating=5'],
      ['/Product/?limit=many', 6, 'limit=many'],
    ] as const) {
      const res = await get(path)
      expect(res.status, path).toBe(400)
      const error = (await res.json()) as { error: string; message: string; details: Record<string, unknown> }
      expect(error.error, path).toBe('INVALID')
      expect(error.details, path).toMatchObject({ position, condition })
      expect(error.message, path).toContain(`position ${position}`)
    }
  })

  it('pages through a query with sort() by its Link header', async () => {
    const ids: number[] = []
    let url: string | undefined =
      `${srv.url}/Product/?rating=ge=1&sort(-rating,name)&select(id,rating)&limit(2)`
    while (url) {
      const res: Response = await fetch(url, { headers: auth })
      expect(res.status).toBe(200)
      ids.push(...((await res.json()) as { id: number }[]).map((p) => p.id))
      const link = res.headers.get('link')
      url = link ? new URL(/^<([^>]*)>/.exec(link)![1]!, res.url).href : undefined
      if (url) expect(url).toContain('sort(-rating,name)&select(id,rating)&limit(2)&after=')
    }
    expect(ids).toEqual([2, 4, 1, 3, 5])
  })

  it('reports the records and index keys a list read (a range on an indexed attribute reads what matches)', async () => {
    const reads = async (path: string) => {
      const res = await get(path)
      expect(res.status, path).toBe(200)
      const returned = ((await res.json()) as unknown[]).length
      return {
        returned,
        records: Number(res.headers.get('x-records-read')),
        keys: Number(res.headers.get('x-index-keys-read')),
      }
    }
    // prices 20, 99.5, 150, 250: the run [90, 200) reads 2 keys and 250, which ends it
    expect(await reads('/Product/?price=ge=90&lt=200')).toEqual({ returned: 2, records: 2, keys: 3 })
    // another condition filters what the index found
    expect(await reads('/Product/?price=ge=90&lt=200&rating=4')).toEqual({ returned: 1, records: 2, keys: 3 })
    // without an index: every record is read
    expect(await reads('/Product/?rating=5')).toEqual({ returned: 2, records: 5, keys: 0 })
  })

  it('writes select() values and arrays as CSV columns', async () => {
    const csv = await get('/Product/?rating=5&select(name)', { accept: 'text/csv' })
    expect(await csv.text()).toBe('name\r\nKey\r\nMonitor\r\n')
    const rows = await get('/Product/?rating=5&select([name,rating])', { accept: 'text/csv' })
    expect(await rows.text()).toBe('name,rating\r\nKey,5\r\nMonitor,5\r\n')
  })
})

describe('GET /Table/id.attribute', () => {
  it('returns one declared attribute, or the related record', async () => {
    expect(await body('/Product/1.name')).toBe('Keyboard')
    expect(await body('/Product/3.brand')).toEqual({ id: 1, name: 'Acme' })
    expect(await body('/Brand/1.products')).toMatchObject([{ name: 'Keyboard' }, { name: 'Mouse' }])
    expect((await get('/Product/9.name')).status).toBe(404)
  })
})
