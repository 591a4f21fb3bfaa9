import { describe, expect, it } from 'vitest'
import {
  assertSubscribable,
  compareText,
  compileQuery,
  compileSelect,
  compileSort,
  parseQuery,
  QueryError,
} from '../src/index.js'

const sortIds = (text: string, records: Record<string, unknown>[]) =>
  [...records].sort(compileSort(parseQuery(text).sort!)).map((r) => r.id)

describe('compileSort', () => {
  const records = [
    { id: 'a', age: 3, name: 'b' },
    { id: 'b', age: null, name: 'a' },
    { id: 'c', age: 1, name: 'c' },
    { id: 'd', name: 'd' },
    { id: 'e', age: 3, name: 'a' },
  ]
  it('puts null and missing values last in both directions', () => {
    expect(sortIds('sort(age)', records)).toEqual(['c', 'a', 'e', 'b', 'd'])
    expect(sortIds('sort(-age)', records)).toEqual(['a', 'e', 'c', 'b', 'd'])
  })

  it('breaks ties with the next key', () => {
    expect(sortIds('sort(-age,name)', records)).toEqual(['e', 'a', 'c', 'b', 'd'])
    expect(sortIds('sort(+age,-name)', records)).toEqual(['c', 'a', 'e', 'd', 'b'])
  })

  it('sorts by a nested path', () => {
    const rows = [{ id: 1, brand: { name: 'z' } }, { id: 2, brand: { name: 'a' } }, { id: 3 }]
    expect(sortIds('sort(brand.name)', rows)).toEqual([2, 1, 3])
    expect(sortIds('sort(-brand.name)', rows)).toEqual([1, 2, 3])
  })

  it('orders kinds before values: booleans, numbers, dates, strings', () => {
    const rows = [
      { id: 1, v: 'x' },
      { id: 2, v: 10 },
      { id: 3, v: true },
      { id: 4, v: new Date(0) },
      { id: 5, v: 2 },
      { id: 6, v: false },
    ]
    expect(sortIds('sort(v)', rows)).toEqual([6, 3, 5, 2, 4, 1])
  })

  it('orders text by code point', () => {
    const words = ['\uffff', '😀', 'a', 'B']
    expect([...words].sort(compareText)).toEqual(['B', 'a', '\uffff', '😀'])
  })
})

describe('compileSelect', () => {
  const record = {
    id: 1,
    name: 'Rex',
    age: 3,
    brand: { name: 'Acme', id: 9 },
    owners: [{ name: 'x', age: 1 }],
  }
  const project = (text: string, value: unknown = record) => compileSelect(parseQuery(text).select!)(value)

  it.each([
    ['select(name)', 'Rex'],
    ['select(missing)', null],
    ['select(name,)', { name: 'Rex' }],
    ['select(name,age,missing)', { name: 'Rex', age: 3 }],
    ['select([name,age,missing])', ['Rex', 3, null]],
    ['select(name,brand{name})', { name: 'Rex', brand: { name: 'Acme' } }],
    ['select(brand{id})', { id: 9 }],
    ['select(owners{name})', [{ name: 'x' }]],
    ['select=name,age', { name: 'Rex', age: 3 }],
    ['select=name', { name: 'Rex' }],
  ])('%s', (text, expected) => {
    expect(project(text)).toEqual(expected)
  })

  it('selects __proto__ as an own attribute, never as the prototype', () => {
    const value = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}')
    const out = compileSelect(parseQuery('select(__proto__,a)').select!)(value) as Record<string, unknown>
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype)
    expect(Object.hasOwn(out, '__proto__')).toBe(true)
    expect(JSON.stringify(out)).toBe('{"__proto__":{"polluted":true},"a":1}')
  })

  it('keeps values that are not objects as they are in object mode', () => {
    expect(project('select(a,b)', 'raw')).toBe('raw')
  })

  it('reads related records through the field accessors the caller supplies', () => {
    const brands = new Map([[9, { id: 9, name: 'Acme', country: 'NL' }]])
    const seen: string[] = []
    const select = compileSelect(parseQuery('select(name,brand{name})').select!, {
      field: (path) => {
        seen.push(path.join('.'))
        return path.join('.') === 'brand' ? (r) => brands.get((r as { brandId: number }).brandId) : undefined
      },
    })
    expect(select({ name: 'Rex', brandId: 9 })).toEqual({ name: 'Rex', brand: { name: 'Acme' } })
    expect(select({ name: 'Max', brandId: 1 })).toEqual({ name: 'Max' })
    expect(seen.sort()).toEqual(['brand', 'brand.name', 'name'])
  })
})

describe('compileQuery', () => {
  it('filters, sorts, limits and projects from one string', () => {
    const q = compileQuery('age=gt=1&sort(-age)&select(name)&limit(1,3)', {
      types: (p) => (p[0] === 'age' ? 'Int' : undefined),
    })
    const rows = [
      { name: 'a', age: 1 },
      { name: 'b', age: 2 },
      { name: 'c', age: 3 },
      { name: 'd', age: 4 },
      { name: 'e', age: 5 },
    ]
    const { limit, offset } = q.query
    const page = rows
      .filter(q.matches)
      .sort(q.compare)
      .slice(offset, offset! + limit!)
      .map(q.project!)
    expect(page).toEqual(['d', 'c'])
  })

  it('refuses sort, limit, offset and after on subscriptions', () => {
    expect(() => assertSubscribable(parseQuery('a=1&select(b)'))).not.toThrow()
    for (const text of ['a=1&sort(a)', 'limit(3)', 'offset=2', 'a=1&after=x']) {
      const error = (() => {
        try {
          assertSubscribable(parseQuery(text))
        } catch (e) {
          return e
        }
      })()
      expect(error, text).toBeInstanceOf(QueryError)
      expect((error as QueryError).code).toBe('QUERY_UNSUPPORTED')
    }
  })
})
