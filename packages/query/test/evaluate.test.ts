import { describe, expect, it } from 'vitest'
import { type AttributeType, compileQuery, QueryError, type QueryErrorCode } from '../src/index.js'

const SCHEMA: Record<string, AttributeType> = {
  age: 'Int',
  price: 'Float',
  name: 'String',
  ref: 'ID',
  born: 'Date',
  good: 'Boolean',
  tags: 'String',
}
const types = (path: readonly string[]) => SCHEMA[path.join('.')]

/** The records of `records` a query matches, by their `id`. */
function matching(text: string, records: Record<string, unknown>[], typed = true): unknown[] {
  const { matches } = compileQuery(text, typed ? { types } : {})
  return records.filter(matches).map((r) => r.id)
}

describe('conversion of values', () => {
  it('converts a bare value to the schema type', () => {
    const records = [
      { id: 1, age: 3 },
      { id: 2, age: '3' },
      { id: 3, name: '007' },
      { id: 4, name: 7 },
      { id: 5, good: true },
      { id: 6, good: 'true' },
      { id: 7, price: 2.5 },
    ]
    expect(matching('age==3', records)).toEqual([1])
    expect(matching('age=3', records)).toEqual([1])
    expect(matching('name==007', records)).toEqual([3])
    expect(matching('good==true', records)).toEqual([5])
    expect(matching('price==2.5', records)).toEqual([7])
    expect(matching('price=gt=2', records)).toEqual([7])
  })

  it('lets the schema type win over a prefix', () => {
    const records = [
      { id: 1, age: 5 },
      { id: 2, age: '5' },
      { id: 3, name: '5' },
    ]
    expect(matching('age==string:5', records)).toEqual([1])
    expect(matching('name==number:5', records)).toEqual([3])
  })

  it('matches an ID as a string or as an integer', () => {
    const records = [
      { id: 1, ref: 5 },
      { id: 2, ref: '5' },
      { id: 3, ref: '05' },
      { id: 4, ref: 'x' },
    ]
    expect(matching('ref==5', records)).toEqual([1, 2])
    expect(matching('ref==x', records)).toEqual([4])
    expect(matching('ref==05', records)).toEqual([3])
  })

  it('compares dates as instants, whatever the record holds (ISO text, epoch ms, Date)', () => {
    const records = [
      { id: 1, born: '2020-01-01T00:00:00.000Z' },
      { id: 2, born: Date.parse('2021-06-01T00:00:00Z') },
      { id: 3, born: new Date('2022-01-01T00:00:00Z') },
      { id: 4, born: 'not a date' },
      { id: 5 },
    ]
    expect(matching('born=gt=2020-06-01', records)).toEqual([2, 3])
    expect(matching('born=lt=2021-06-01T00%3A00%3A00Z', records)).toEqual([1])
    expect(matching('born==2020-01-01T00%3A00%3A00Z', records)).toEqual([1])
    expect(matching(`born==${Date.parse('2021-06-01T00:00:00Z')}`, records)).toEqual([2])
    expect(matching('born!=2020-01-01', records)).toEqual([2, 3, 4, 5])
    // untyped: the date: prefix does the same
    expect(matching('born=ge=date:2021-06-01', records, false)).toEqual([2, 3])
  })

  it('reads null, numbers and booleans by their look on untyped attributes', () => {
    const records = [
      { id: 1, x: 5 },
      { id: 2, x: '5' },
      { id: 3, x: true },
      { id: 4, x: 'true' },
      { id: 5, x: null },
      { id: 6, x: 'null' },
      { id: 7, x: 'abc' },
      { id: 8 },
    ]
    expect(matching('x==5', records, false)).toEqual([1])
    expect(matching('x==true', records, false)).toEqual([3])
    expect(matching('x==null', records, false)).toEqual([5, 8])
    expect(matching('x==abc', records, false)).toEqual([7])
    expect(matching('x==string:5', records, false)).toEqual([2])
    expect(matching('x==string:true', records, false)).toEqual([4])
    expect(matching('x==string:null', records, false)).toEqual([6])
    expect(matching('x==number:5', records, false)).toEqual([1])
    expect(matching('x==boolean:true', records, false)).toEqual([3])
  })

  it('never converts beyond the schema type with strict === and !==', () => {
    const records = [
      { id: 1, x: 5, age: 5 },
      { id: 2, x: '5', age: 6 },
      { id: 3, x: null },
      { id: 4, x: 'null' },
    ]
    expect(matching('x===5', records)).toEqual([2])
    expect(matching('x===null', records)).toEqual([4])
    expect(matching('x!==5', records)).toEqual([1, 3, 4])
    expect(matching('x===number:5', records)).toEqual([])
    expect(matching('age===5', records)).toEqual([1])
  })

  it.each<[string, QueryErrorCode, number]>([
    ['age==abc', 'QUERY_INVALID_VALUE', 0],
    ['x=1&age===null', 'QUERY_INVALID_VALUE', 4],
    ['good==yes', 'QUERY_INVALID_VALUE', 0],
    ['born=gt=someday', 'QUERY_INVALID_VALUE', 0],
    ['x==number:five', 'QUERY_INVALID_VALUE', 0],
    ['x=gt=null', 'QUERY_INVALID_VALUE', 0],
    ['age=sw=1', 'QUERY_OPERATOR_TYPE', 0],
    ['x=1|born=ct=2020', 'QUERY_OPERATOR_TYPE', 4],
    ['x=ew=number:5', 'QUERY_OPERATOR_TYPE', 0],
  ])('rejects %s with %s at %i', (text, code, position) => {
    const error = (() => {
      try {
        compileQuery(text, { types })
      } catch (e) {
        return e
      }
    })()
    expect(error).toBeInstanceOf(QueryError)
    expect((error as QueryError).code).toBe(code)
    expect((error as QueryError).position).toBe(position)
    expect((error as QueryError).message).toContain(`at position ${position}`)
  })
})

describe('null and missing', () => {
  const records = [
    { id: 1, v: 5, s: 'abc' },
    { id: 2, v: null, s: null },
    { id: 3 },
    { id: 4, v: 0, s: '' },
    { id: 5, v: 10, s: 'xbcx' },
  ]
  it.each([
    ['v=lt=100', [1, 4, 5]],
    ['v=le=100', [1, 4, 5]],
    ['v=gt=-1', [1, 4, 5]],
    ['v=ge=-1', [1, 4, 5]],
    ['s=sw=', [1, 4, 5]],
    ['s=ew=', [1, 4, 5]],
    ['s=ct=', [1, 4, 5]],
    ['s==*', [1, 4, 5]],
  ])('comparisons never match null or missing: %s', (text, expected) => {
    expect(matching(text, records, false)).toEqual(expected)
  })

  it('==null matches null and missing only; !=null the others', () => {
    expect(matching('v==null', records, false)).toEqual([2, 3])
    expect(matching('v!=null', records, false)).toEqual([1, 4, 5])
    expect(matching('v=ne=null', records, false)).toEqual([1, 4, 5])
  })

  it('!=X matches every record whose value is not X, null and missing included', () => {
    expect(matching('v!=5', records, false)).toEqual([2, 3, 4, 5])
    expect(matching('s!=abc', records, false)).toEqual([2, 3, 4, 5])
  })

  it('treats a record that is not an object as having no attributes', () => {
    const { matches } = compileQuery('v==null')
    expect([null, 'text', 7, new Uint8Array(1)].map(matches)).toEqual([true, true, true, true])
    expect(compileQuery('v==1').matches(null)).toBe(false)
  })

  it('does not read inherited properties', () => {
    const { matches } = compileQuery('constructor==null&toString==null&__proto__==null')
    expect(matches({})).toBe(true)
    expect(compileQuery('constructor==x').matches({ constructor: 'x' })).toBe(true)
  })
})

describe('comparisons', () => {
  it('compares like with like only: text with text, numbers with numbers', () => {
    const records = [
      { id: 1, v: 5 },
      { id: 2, v: '5' },
      { id: 3, v: '50' },
      { id: 4, v: true },
    ]
    expect(matching('v=gt=4', records, false)).toEqual([1])
    expect(matching('v=gt=string:4', records, false)).toEqual([2, 3])
    expect(matching('v=ge=false', records, false)).toEqual([4])
  })

  it('orders text by code point (UTF-8 byte order), as indexes do', () => {
    const records = [
      { id: 1, s: '\uffff' },
      { id: 2, s: '😀' },
      { id: 3, s: 'z' },
    ]
    expect(matching('s=gt=%EF%BF%BF', records)).toEqual([2])
    expect(matching('s=lt=%F0%9F%98%80', records)).toEqual([1, 3])
  })

  it('matches starts-with, ends-with and contains on text', () => {
    const records = [
      { id: 1, name: 'Keyboard' },
      { id: 2, name: 'Key' },
      { id: 3, name: 'monkey' },
    ]
    expect(matching('name==Key*', records)).toEqual([1, 2])
    expect(matching('name=sw=Key', records)).toEqual([1, 2])
    expect(matching('name=ew=key', records)).toEqual([3])
    expect(matching('name=ct=ey', records)).toEqual([1, 2, 3])
    expect(matching('name=ct=board', records)).toEqual([1])
  })
})

describe('arrays', () => {
  const records = [
    { id: 1, tags: ['a', 'b'] },
    { id: 2, tags: ['c'] },
    { id: 3, tags: [] },
    { id: 4 },
    { id: 5, tags: 'a' },
    { id: 6, n: [1, 20] },
  ]
  it('matches ==x when some element equals x, and !=x when none does', () => {
    expect(matching('tags==a', records)).toEqual([1, 5])
    expect(matching('tags!=a', records)).toEqual([2, 3, 4, 6])
    expect(matching('tags=sw=c', records)).toEqual([2])
    expect(matching('n=gt=10', records)).toEqual([6])
    expect(matching('n=lt=10&n=gt=10', records)).toEqual([6]) // each condition on some element
  })

  it('reads a dotted path through nested objects and arrays of objects', () => {
    const rows = [
      { id: 1, brand: { name: 'Acme' } },
      { id: 2, owners: [{ name: 'x' }, { name: 'y' }] },
      { id: 3, brand: null },
    ]
    expect(matching('brand.name=Acme', rows)).toEqual([1])
    expect(matching('owners.name==y', rows)).toEqual([2])
    expect(matching('owners.name!=y', rows)).toEqual([1, 3])
    expect(matching('brand.name==null', rows)).toEqual([2, 3])
  })
})

describe('unions and groups', () => {
  const records = [
    { id: 1, rating: 5, price: 50, tag: 'fast' },
    { id: 2, rating: 3, price: 150, tag: 'slow' },
    { id: 3, rating: 4, price: 250, tag: 'fast' },
    { id: 4, rating: 5, price: 150, tag: 'efficient' },
  ]
  it.each([
    ['rating=5|price=gt=200', [1, 3, 4]],
    ['rating=5|(price=gt=100&price=lt=200)', [1, 2, 4]],
    ['rating=5&[tag=fast|tag=efficient]', [1, 4]],
    ['price=gt=100&lt=200', [2, 4]],
    ['price=lt=100|[rating=gt=3&[tag=fast|tag=scalable]&price=gt=200]', [1, 3]],
  ])('%s', (text, expected) => {
    expect(matching(text, records)).toEqual(expected)
  })

  it('uses accessors the caller supplies (relationships)', () => {
    const brands = new Map([[7, { name: 'Acme' }]])
    const { matches } = compileQuery('brand.name=Acme', {
      accessor: (path) =>
        path[0] === 'brand'
          ? (r) => brands.get((r as { brandId: number }).brandId)?.[path[1] as 'name']
          : undefined,
    })
    expect([{ brandId: 7 }, { brandId: 8 }].map(matches)).toEqual([true, false])
  })
})
