import { describe, expect, it } from 'vitest'
import { type ParseOptions, parseQuery, QueryError, type QueryErrorCode } from '../src/index.js'
import { parts, shape } from './shape.js'

describe('parseQuery: operators', () => {
  it.each([
    ['a=1', 'a eq "1"'],
    ['a==1', 'a eq "1"'],
    ['a=lt=1', 'a lt "1"'],
    ['a=le=1', 'a le "1"'],
    ['a=gt=1', 'a gt "1"'],
    ['a=ge=1', 'a ge "1"'],
    ['a=ne=1', 'a ne "1"'],
    ['a!=1', 'a ne "1"'],
    ['a=ct=ell', 'a ct "ell"'],
    ['a=sw=He', 'a sw "He"'],
    ['a==He*', 'a sw "He"'],
    ['a==*', 'a sw ""'],
    ['a=ew=lo', 'a ew "lo"'],
    ['a===1', 'a strict-eq "1"'],
    ['a!==1', 'a strict-ne "1"'],
    // a plain = keeps a trailing star literal (as the list parameters did); %2A is always literal
    ['a=He*', 'a eq "He*"'],
    ['a==He%2A', 'a eq "He*"'],
    ['a===He*', 'a strict-eq "He*"'],
    ['a=', 'a eq ""'],
    ['a==null', 'a eq "null"'],
    ['a!=null', 'a ne "null"'],
    ['a==number:5', 'a eq "5" as number'],
    ['a==boolean:true', 'a eq "true" as boolean'],
    ['a==string:007', 'a eq "007" as string'],
    ['a=gt=date:2024-01-05T20%3A07%3A27.955Z', 'a gt "2024-01-05T20:07:27.955Z" as date'],
    ['a=string:x', 'a eq "x" as string'],
    // strict operators take the text as it is: no prefix, no null
    ['a===number:5', 'a strict-eq "number:5"'],
    ['a===null', 'a strict-eq "null"'],
    // an unknown prefix is part of the value; a colon elsewhere is too
    ['t=gt=2017-03-08T09:30:00Z', 't gt "2017-03-08T09:30:00Z"'],
    ['a==url:x', 'a eq "url:x"'],
    ['brand.name=Acme', 'brand.name eq "Acme"'],
    ['a.b.c=gt=1', 'a.b.c gt "1"'],
  ])('%s', (text, expected) => {
    expect(shape(parseQuery(text).filter)).toBe(expected)
  })
})

describe('parseQuery: URL decoding', () => {
  it.each([
    ['name==Cool+Shop', 'name eq "Cool Shop"'],
    ['name==Cool%20Shop', 'name eq "Cool Shop"'],
    ['name==a%2Bb', 'name eq "a+b"'],
    ['q==a%26b%7Cc%28d%29%5Be%5D', 'q eq "a&b|c(d)[e]"'],
    ['q==x%3Dy', 'q eq "x=y"'],
    ['n==%E2%82%AC%F0%9F%90%95', 'n eq "€🐕"'],
    ['a%2Eb=1', 'a.b eq "1"'],
    ['first%20name=Al', 'first name eq "Al"'],
    // raw parentheses balanced inside a value belong to it (encodeURIComponent leaves them raw)
    ['x==f(y)', 'x eq "f(y)"'],
    ['(x==f(y)&z=1)', 'and(x eq "f(y)", z eq "1")'],
    ['x==a!b', 'x eq "a!b"'],
  ])('%s', (text, expected) => {
    expect(shape(parseQuery(text).filter)).toBe(expected)
  })
})

describe('parseQuery: unions and groups', () => {
  it.each([
    ['a=1&b=2', 'and(a eq "1", b eq "2")'],
    ['a=1|b=2|c=3', 'or(a eq "1", b eq "2", c eq "3")'],
    ['(a=1|b=2)&c=3', 'and(or(a eq "1", b eq "2"), c eq "3")'],
    ['[a=1|b=2]&c=3', 'and(or(a eq "1", b eq "2"), c eq "3")'],
    ['a=1|(b=2&c=3)', 'or(a eq "1", and(b eq "2", c eq "3"))'],
    [
      'rating=5&[tag=fast|tag=scalable|tag=efficient]',
      'and(rating eq "5", or(tag eq "fast", tag eq "scalable", tag eq "efficient"))',
    ],
    [
      'price=lt=100|[rating=5&[tag=fast|tag=scalable]&inStock=true]',
      'or(price lt "100", and(rating eq "5", or(tag eq "fast", tag eq "scalable"), inStock eq "true"))',
    ],
    ['((a=1))', 'a eq "1"'],
    ['[(a=1|b=2)]', 'or(a eq "1", b eq "2")'],
    ['(a=1&b=2)&c=3', 'and(a eq "1", b eq "2", c eq "3")'],
    ['a=1|(b=2|c=3)', 'or(a eq "1", b eq "2", c eq "3")'],
    ['(a=1|b=2)&(c=3|d=4)', 'and(or(a eq "1", b eq "2"), or(c eq "3", d eq "4"))'],
    // empty terms at the top level, as URLs have them
    ['&a=1&&b=2&', 'and(a eq "1", b eq "2")'],
    ['?a=1', 'a eq "1"'],
    ['', ''],
  ])('%s', (text, expected) => {
    expect(shape(parseQuery(text).filter)).toBe(expected)
  })
})

describe('parseQuery: chained ranges', () => {
  it.each([
    ['price=gt=100&lt=200', 'and(price gt "100", price lt "200" (chained))'],
    ['price=ge=100&le=200', 'and(price ge "100", price le "200" (chained))'],
    ['a=1&price=gt=1&lt=9&b=2', 'and(a eq "1", price gt "1", price lt "9" (chained), b eq "2")'],
    ['(price=gt=1&lt=9)|x=1', 'or(and(price gt "1", price lt "9" (chained)), x eq "1")'],
    [
      'd=gt=date:2024-01-01&lt=date:2025-01-01',
      'and(d gt "2024-01-01" as date, d lt "2025-01-01" as date (chained))',
    ],
    // an attribute called like an operator, where nothing precedes it or with ==
    ['lt=5', 'lt eq "5"'],
    ['(lt=5)', 'lt eq "5"'],
    ['a=1&lt==5', 'and(a eq "1", lt eq "5")'],
    ['select(a)&lt=5', 'lt eq "5"'],
  ])('%s', (text, expected) => {
    expect(shape(parseQuery(text).filter)).toBe(expected)
  })
})

describe('parseQuery: functions', () => {
  it.each([
    ['select(name)', { select: { kind: 'value', fields: [{ name: 'name' }] } }],
    ['select(name,)', { select: { kind: 'object', fields: [{ name: 'name' }] } }],
    ['select(name,age)', { select: { kind: 'object', fields: [{ name: 'name' }, { name: 'age' }] } }],
    ['select([name,age])', { select: { kind: 'array', fields: [{ name: 'name' }, { name: 'age' }] } }],
    [
      'select(name,brand{name,id})',
      {
        select: {
          kind: 'object',
          fields: [{ name: 'name' }, { name: 'brand', select: [{ name: 'name' }, { name: 'id' }] }],
        },
      },
    ],
    [
      'select(brand{name,owner{email}})',
      {
        select: {
          kind: 'value',
          fields: [
            { name: 'brand', select: [{ name: 'name' }, { name: 'owner', select: [{ name: 'email' }] }] },
          ],
        },
      },
    ],
    ['select(first%20name)', { select: { kind: 'value', fields: [{ name: 'first name' }] } }],
    ['limit(20)', { limit: 20 }],
    ['limit(10,30)', { limit: 20, offset: 10 }],
    ['limit(5,5)', { limit: 0, offset: 5 }],
    ['sort(name)', { sort: [{ path: ['name'], descending: false }] }],
    [
      'sort(+rating,-price,brand.name)',
      {
        sort: [
          { path: ['rating'], descending: false },
          { path: ['price'], descending: true },
          { path: ['brand', 'name'], descending: false },
        ],
      },
    ],
    ['sort(%2Brating)', { sort: [{ path: ['rating'], descending: false }] }],
    [
      'rating=gt=3&inStock=true&select(rating,name)&limit(20)',
      { select: { kind: 'object', fields: [{ name: 'rating' }, { name: 'name' }] }, limit: 20 },
    ],
  ])('%s', (text, expected) => {
    expect(parts(parseQuery(text))).toEqual(expected)
  })

  it('hoists functions out of the conditions, which keep their connective', () => {
    const query = parseQuery('a=1|b=2&select(x)&limit(3)')
    expect(shape(query.filter)).toBe('or(a eq "1", b eq "2")')
    expect(parts(query)).toEqual({ select: { kind: 'value', fields: [{ name: 'x' }] }, limit: 3 })
    expect(shape(parseQuery('select(x)&a=1&sort(a)&b=2').filter)).toBe('and(a eq "1", b eq "2")')
  })
})

describe("parseQuery: today's list parameters keep their meaning", () => {
  it.each([
    [
      'name=Rex&limit=10&offset=20&select=name,age&sort=-age,name',
      'name eq "Rex"',
      {
        limit: 10,
        offset: 20,
        select: { kind: 'object', fields: [{ name: 'name' }, { name: 'age' }] },
        sort: [
          { path: ['age'], descending: true },
          { path: ['name'], descending: false },
        ],
      },
    ],
    ['select=name', '', { select: { kind: 'object', fields: [{ name: 'name' }] } }],
    ['select=%20a%20,,b', '', { select: { kind: 'object', fields: [{ name: 'a' }, { name: 'b' }] } }],
    ['select=', '', {}],
    ['sort=', '', {}],
    [
      'sort=age:desc,name:ASC',
      '',
      {
        sort: [
          { path: ['age'], descending: true },
          { path: ['name'], descending: false },
        ],
      },
    ],
    // URLSearchParams turns a bare + into a space; both forms mean ascending
    ['sort=+age', '', { sort: [{ path: ['age'], descending: false }] }],
    ['sort=%2Bage', '', { sort: [{ path: ['age'], descending: false }] }],
    ['after=WyJwMDQiXQ&limit=5', '', { after: 'WyJwMDQiXQ', limit: 5 }],
    ['limit=0', '', { limit: 0 }],
    // the operator forms of those names are conditions
    ['limit==5&sort=gt=2', 'and(limit eq "5", sort gt "2")', {}],
  ])('%s', (text, filter, expected) => {
    const query = parseQuery(text)
    expect(shape(query.filter)).toBe(filter)
    expect(parts(query)).toEqual(expected)
  })

  it('skips the parameters the caller reads itself', () => {
    const query = parseQuery('accept=application%2Fjson&a=1&access_token=t', {
      ignore: ['accept', 'access_token'],
    })
    expect(shape(query.filter)).toBe('a eq "1"')
    expect(shape(parseQuery('accept=x').filter)).toBe('accept eq "x"')
  })
})

describe('parseQuery: errors name the code, the position and the condition', () => {
  it.each<[string, QueryErrorCode, number, string, ParseOptions?]>([
    ['a=1|b=2&c=3', 'QUERY_MIXED_OPERATORS', 7, 'a=1|b=2&c=3'],
    ['a=1&b=2|c=3', 'QUERY_MIXED_OPERATORS', 7, 'a=1&b=2|c=3'],
    ['x=0&(a=1|b=2&c=3)', 'QUERY_MIXED_OPERATORS', 12, '(a=1|b=2&c=3)'],
    ['a=1&(b=2', 'QUERY_SYNTAX', 4, '(b=2'],
    ['[a=1)', 'QUERY_SYNTAX', 4, '[a=1)'],
    ['a=1)', 'QUERY_SYNTAX', 3, 'a=1)'],
    ['()', 'QUERY_SYNTAX', 0, '()'],
    ['a=1|', 'QUERY_SYNTAX', 3, 'a=1|'],
    ['(a=1&)', 'QUERY_SYNTAX', 4, '(a=1&)'],
    ['a=1|&b=2', 'QUERY_SYNTAX', 4, '&b=2'],
    ['name', 'QUERY_SYNTAX', 4, 'name'],
    ['x=1&=1', 'QUERY_SYNTAX', 4, '=1'],
    ['a..b=1', 'QUERY_SYNTAX', 2, 'a..b=1'],
    ['a=foo=1', 'QUERY_UNKNOWN_OPERATOR', 1, 'a=foo=1'],
    ['price=gt=1&gt=5', 'QUERY_INVALID_CHAIN', 11, 'gt=5'],
    ['price=lt=9&gt=1', 'QUERY_INVALID_CHAIN', 11, 'gt=1'],
    ['a=1&lt=5', 'QUERY_INVALID_CHAIN', 4, 'lt=5'],
    ['price=gt=1|lt=5', 'QUERY_INVALID_CHAIN', 11, 'lt=5'],
    ['price=gt=1&lt=5&le=6', 'QUERY_INVALID_CHAIN', 16, 'le=6'],
    ['price==1&lt=5', 'QUERY_INVALID_CHAIN', 9, 'lt=5'],
    ['a=%zz', 'QUERY_INVALID_ENCODING', 2, 'a=%zz'],
    ['b==ok&a=x%E2%82', 'QUERY_INVALID_ENCODING', 9, 'a=x%E2%82'],
    ['a%=1', 'QUERY_INVALID_ENCODING', 1, 'a%=1'],
    ['foo(1)', 'QUERY_UNKNOWN_FUNCTION', 0, 'foo(1)'],
    ['select()', 'QUERY_UNKNOWN_FUNCTION', 7, 'select()'],
    ['select(a,,b)', 'QUERY_UNKNOWN_FUNCTION', 9, 'select(a,,b)'],
    ['select([a,b)', 'QUERY_UNKNOWN_FUNCTION', 7, 'select([a,b)'],
    ['select(a{b)', 'QUERY_UNKNOWN_FUNCTION', 8, 'select(a{b)'],
    ['sort()', 'QUERY_UNKNOWN_FUNCTION', 5, 'sort()'],
    ['sort(a,,b)', 'QUERY_UNKNOWN_FUNCTION', 7, 'sort(a,,b)'],
    ['select(a', 'QUERY_SYNTAX', 6, 'select(a'],
    ['(select(a))', 'QUERY_MISPLACED', 1, 'select(a)'],
    ['a=1|select(x)', 'QUERY_MISPLACED', 3, 'a=1|select(x)'],
    ['(limit=5)', 'QUERY_MISPLACED', 1, 'limit=5'],
    ['limit=5&limit(3)', 'QUERY_DUPLICATE', 8, 'limit(3)'],
    ['limit(1,3)&offset=2', 'QUERY_DUPLICATE', 11, 'offset=2'],
    ['select(a)&select=b', 'QUERY_DUPLICATE', 10, 'select=b'],
    ['limit=x', 'QUERY_INVALID_VALUE', 6, 'limit=x'],
    ['offset=-1', 'QUERY_INVALID_VALUE', 7, 'offset=-1'],
    ['limit(5,2)', 'QUERY_INVALID_VALUE', 6, 'limit(5,2)'],
    ['limit(a)', 'QUERY_INVALID_VALUE', 6, 'limit(a)'],
    ['a=x+y', 'QUERY_TOPIC_WILDCARD', 3, 'a=x+y', { topic: true }],
    ['a=1&b=#', 'QUERY_TOPIC_WILDCARD', 6, 'b=#', { topic: true }],
  ])('%s', (text, code, position, condition, options) => {
    let error: unknown
    try {
      parseQuery(text, options)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(QueryError)
    const {
      code: actualCode,
      position: actualPosition,
      condition: actualCondition,
      message,
    } = error as QueryError
    expect({ code: actualCode, position: actualPosition, condition: actualCondition }).toEqual({
      code,
      position,
      condition,
    })
    expect(message).toContain(`at position ${position}`)
    if (condition) expect(message).toContain(`'${condition}'`)
    expect((error as QueryError).details).toEqual({ position, condition })
  })

  it('reads %2B and %23 in a topic filter query as + and #', () => {
    expect(shape(parseQuery('a==x%2By&b==%23', { topic: true }).filter)).toBe('and(a eq "x+y", b eq "#")')
  })
})
