import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  bindFilter,
  compileFilter,
  filedByOneRange,
  parseQuery,
  QuerySubscriptionIndex,
  type Transition,
  type TypeLookup,
} from '../src/index.js'
import { IntervalIndex } from '../src/interval-index.js'
import { NumberIntervals } from '../src/number-intervals.js'

const bound = (text: string, types?: TypeLookup) => {
  const filter = parseQuery(text).filter
  return filter && bindFilter(filter, types)
}

/** Every (subscription, transition) a change produces, sorted, for comparison. */
function transitions<S>(index: QuerySubscriptionIndex<S>, before: unknown, after: unknown): string[] {
  const out: string[] = []
  index.changes(before, after, (s, t) => out.push(`${String(s)}:${t}`))
  return out.sort()
}

describe('QuerySubscriptionIndex', () => {
  it('tells enter, update and leave from the old and new values', () => {
    const index = new QuerySubscriptionIndex<string>()
    index.add('labs', bound('breed=Lab'))
    index.add('old', bound('age=gt=3'))
    index.add('old labs', bound('breed=Lab&age=gt=3'))
    expect(transitions(index, undefined, { breed: 'Lab', age: 2 })).toEqual(['labs:enter'])
    expect(transitions(index, { breed: 'Lab', age: 2 }, { breed: 'Lab', age: 4 })).toEqual([
      'labs:update',
      'old labs:enter',
      'old:enter',
    ])
    expect(transitions(index, { breed: 'Lab', age: 4 }, { breed: 'Pug', age: 4 })).toEqual([
      'labs:leave',
      'old labs:leave',
      'old:update',
    ])
    expect(transitions(index, { breed: 'Pug', age: 4 }, undefined)).toEqual(['old:leave'])
    // a message to a record: every subscription it matches, as an update
    expect(transitions(index, { breed: 'Lab', age: 1 }, { breed: 'Lab', age: 1 })).toEqual(['labs:update'])
    expect(transitions(index, undefined, undefined)).toEqual([])
  })

  it('keeps a payload for a subscription filed by one numeric or date range only, and hands it out', () => {
    const index = new QuerySubscriptionIndex<string>()
    const dates: TypeLookup = (p) => (p[0] === 'born' ? 'Date' : undefined)
    const cases: [string, boolean][] = [
      ['price=ge=1&lt=9', true],
      ['price=gt=5', true],
      ['born=gt=2020-01-01', true],
      ['price==3', false],
      ['name=sw=Ke', false],
      ['price=gt=1|price=lt=0', false],
      ['price=gt=1&name==x', false],
    ]
    for (const [query, one] of cases) {
      const filter = bound(query, query.startsWith('born') ? dates : undefined)
      index.add(query, filter)
      expect(filedByOneRange(filter), query).toBe(one)
      expect(index.setPayload(query, `${query} first`, 2), query).toBe(one)
    }
    const got: string[] = []
    index.changes(
      { price: 0, name: 'x' },
      { price: 6, name: 'x', born: '2021-02-03' },
      (s, t, first, second) => got.push(`${s}:${t}:${String(first)}:${String(second)}`),
    )
    expect(got.sort()).toEqual([
      'born=gt=2020-01-01:enter:born=gt=2020-01-01 first:2',
      'price=ge=1&lt=9:enter:price=ge=1&lt=9 first:2',
      'price=gt=1&name==x:enter:undefined:undefined',
      'price=gt=1|price=lt=0:enter:undefined:undefined',
      'price=gt=5:enter:price=gt=5 first:2',
    ])
    // cleared, and gone with its subscription
    index.setPayload('price=gt=5', undefined, undefined)
    index.remove('price=ge=1&lt=9')
    expect(index.setPayload('price=ge=1&lt=9', 1, 2)).toBe(false)
    got.length = 0
    index.changes({ price: 0 }, { price: 6 }, (s, t, first) => got.push(`${s}:${t}:${String(first)}`))
    expect(got.sort()).toEqual(['price=gt=1|price=lt=0:enter:undefined', 'price=gt=5:enter:undefined'])
  })

  it('files equality and range conditions, and keeps the rest in the residual list', () => {
    const index = new QuerySubscriptionIndex<number>()
    const queries = [
      'a=1',
      'a=gt=1&lt=5',
      'a=1|b=2',
      'a!=1',
      'name=ct=x',
      'a!=1|b=2',
      'a!=1&b=2',
      'name==Ke*',
      'a==null',
      '',
    ]
    queries.forEach((q, i) => {
      index.add(i, bound(q))
    })
    expect(index.stats).toEqual({ indexed: 6, residual: 4 })
    expect(index.size).toBe(queries.length)
  })

  it('compares a change only with the subscriptions it can concern', () => {
    const index = new QuerySubscriptionIndex<number>()
    for (let i = 0; i < 10_000; i++) index.add(i, bound(`category=c${i}`))
    for (let i = 0; i < 1000; i++) index.add(10_000 + i, bound(`price=ge=${i * 10}&lt=${i * 10 + 10}`))
    index.add(-1, bound('price!=5'))
    const candidates = index.candidates({ category: 'c42', price: 55 }, { category: 'c43', price: 56 })
    expect(candidates.sort((a, b) => a - b)).toEqual([-1, 42, 43, 10_005])
  })

  it('removes and replaces subscriptions', () => {
    const index = new QuerySubscriptionIndex<string>()
    index.add('s', bound('a=1'))
    index.add('r', bound('a=gt=0'))
    index.add('s', bound('a=2')) // replaces
    expect(index.size).toBe(2)
    expect(transitions(index, undefined, { a: 1 })).toEqual(['r:enter'])
    expect(transitions(index, undefined, { a: 2 })).toEqual(['r:enter', 's:enter'])
    expect(index.remove('r')).toBe(true)
    expect(index.remove('r')).toBe(false)
    expect(transitions(index, undefined, { a: 2 })).toEqual(['s:enter'])
    expect(index.has('s')).toBe(true)
  })

  it('finds arrays whose elements meet the two halves of a range separately', () => {
    const index = new QuerySubscriptionIndex<string>()
    index.add('between', bound('n=gt=5&lt=10'))
    index.add('crossed', bound('n=gt=5&n=lt=0'))
    index.add('null', bound('n==null'))
    expect(transitions(index, undefined, { n: [7] })).toEqual(['between:enter'])
    expect(transitions(index, undefined, { n: [1, 20] })).toEqual(['between:enter'])
    expect(transitions(index, undefined, { n: [6, -1] })).toEqual(['between:enter', 'crossed:enter'])
    expect(transitions(index, undefined, { n: [undefined, 3] })).toEqual(['null:enter'])
    expect(transitions(index, undefined, { n: [] })).toEqual([])
  })

  it('removes a subscription that names one key twice', () => {
    const index = new QuerySubscriptionIndex<string>()
    index.add('twice', bound('a=1|a=1|a=gt=0|a=gt=0'))
    expect(index.remove('twice')).toBe(true)
    expect(transitions(index, undefined, { a: 1 })).toEqual([])
  })

  it('finds typed values: dates written as text or numbers, IDs as text or integers', () => {
    const types: TypeLookup = (p) => ({ born: 'Date', ref: 'ID' })[p[0]!]
    const index = new QuerySubscriptionIndex<string>()
    index.add('2020s', bound('born=ge=2020-01-01', types))
    index.add('exact', bound('born==2021-01-01T00%3A00%3A00Z', types))
    index.add('ref5', bound('ref==5', types))
    expect(transitions(index, undefined, { born: '2021-01-01T00:00:00Z' })).toEqual([
      '2020s:enter',
      'exact:enter',
    ])
    expect(transitions(index, undefined, { born: Date.parse('2021-01-01T00:00:00Z') })).toEqual([
      '2020s:enter',
      'exact:enter',
    ])
    expect(transitions(index, undefined, { born: new Date('2025-05-05') })).toEqual(['2020s:enter'])
    expect(transitions(index, undefined, { ref: 5 })).toEqual(['ref5:enter'])
    expect(transitions(index, undefined, { ref: '5' })).toEqual(['ref5:enter'])
  })
})

/** What the property below needs of an interval index (IntervalIndex and NumberIntervals). */
interface Intervals {
  add(
    low: number | undefined,
    high: number | undefined,
    id: number,
    lowOpen: boolean,
    highOpen: boolean,
  ): unknown
  remove(handle: unknown): void
  stab(point: number, visit: (id: number) => void): void
  overlap(low: number, high: number, visit: (id: number) => void): void
  readonly size: number
}
const kinds: [string, () => Intervals][] = [
  ['IntervalIndex', () => new IntervalIndex<number, number>((a, b) => a - b) as unknown as Intervals],
  ['NumberIntervals', () => new NumberIntervals<number>() as unknown as Intervals],
]

describe.each(kinds)('%s', (_, make) => {
  it('finds exactly the intervals meeting a point or a span, through adds, removals and rebuilds', () => {
    const bound = fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined })
    const operation = fc.oneof(
      fc.record({
        kind: fc.constant('add' as const),
        a: bound,
        b: bound,
        lowOpen: fc.boolean(),
        highOpen: fc.boolean(),
      }),
      fc.record({ kind: fc.constant('remove' as const), which: fc.nat() }),
      fc.record({
        kind: fc.constant('find' as const),
        a: fc.integer({ min: -5, max: 105 }),
        span: fc.nat(30),
      }),
    )
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 400 }), (operations) => {
        const index = make()
        type Live = { low?: number; high?: number; lowOpen: boolean; highOpen: boolean; id: number }
        const live: (Live & { handle: unknown })[] = []
        const meets = (i: Live, a: number, b: number) =>
          (i.low === undefined || (i.lowOpen ? b > i.low : b >= i.low)) &&
          (i.high === undefined || (i.highOpen ? a < i.high : a <= i.high))
        let next = 0
        for (const op of operations) {
          if (op.kind === 'add') {
            const id = next++
            const [low, high] =
              op.a !== undefined && op.b !== undefined && op.a > op.b ? [op.b, op.a] : [op.a, op.b]
            const { lowOpen, highOpen } = op
            live.push({
              low,
              high,
              lowOpen,
              highOpen,
              id,
              handle: index.add(low, high, id, lowOpen, highOpen),
            })
          } else if (op.kind === 'remove' && live.length > 0) {
            const [gone] = live.splice(op.which % live.length, 1)
            index.remove(gone!.handle)
          } else if (op.kind === 'find') {
            const [a, b] = [op.a, op.a + (op.span % 3 === 0 ? 0 : op.span)]
            const found: number[] = []
            if (a === b) index.stab(a, (id) => found.push(id))
            else index.overlap(a, b, (id) => found.push(id))
            const expected = live.filter((i) => meets(i, a, b)).map((i) => i.id)
            expect(found.sort((x, y) => x - y)).toEqual(expected.sort((x, y) => x - y))
          }
          expect(index.size).toBe(live.length)
        }
      }),
      { numRuns: 200 },
    )
  })
})

describe('NumberIntervals.classify', () => {
  it('tells enter, update and leave exactly, with each payload, with ids reused after removals', () => {
    const point = fc.option(fc.integer({ min: -5, max: 105 }), { nil: undefined })
    const bound = fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined })
    const interval = fc.record({ a: bound, b: bound, lowOpen: fc.boolean(), highOpen: fc.boolean() })
    // Over 32 pending intervals the first lookup builds the tree; fewer are only scanned.
    const many = fc.oneof(
      fc.array(interval, { maxLength: 20 }),
      fc.array(interval, { minLength: 40, maxLength: 150 }),
    )
    fc.assert(
      fc.property(
        many,
        fc.array(fc.nat(), { maxLength: 60 }),
        fc.array(interval, { maxLength: 60 }),
        fc.array(fc.tuple(point, point), { minLength: 1, maxLength: 5 }),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 40 }),
        (first, removals, second, moves, build, payloads) => {
          const index = new NumberIntervals<number>()
          type Live = { low?: number; high?: number; lowOpen: boolean; highOpen: boolean; handle: number }
          const live = new Map<number, Live>()
          // Each id's payload (set while pending, in the tree, after removals; cleared by a third).
          const payload = new Map<number, string | undefined>()
          let version = 0
          const setPayloads = (which: number[]) => {
            for (const w of which) {
              const ids = [...live.keys()]
              if (ids.length === 0) return
              const id = ids[w % ids.length]!
              const value = w % 3 === 0 ? undefined : `p${id}.${version++}`
              payload.set(id, value)
              index.setPayload(live.get(id)!.handle, value, value === undefined ? undefined : id)
            }
          }
          let next = 0
          const add = (i: (typeof first)[number]) => {
            const [low, high] = i.a !== undefined && i.b !== undefined && i.a > i.b ? [i.b, i.a] : [i.a, i.b]
            const id = next++
            live.set(id, { low, high, ...i, handle: index.add(low, high, id, i.lowOpen, i.highOpen) })
          }
          first.forEach(add)
          setPayloads(payloads.slice(0, payloads.length >> 1))
          // Built here (when over 32), so the removals below take intervals out of the tree's nodes.
          if (build) index.classify(0, 0, () => {})
          for (const r of removals) {
            const ids = [...live.keys()]
            if (ids.length === 0) break
            const id = ids[r % ids.length]!
            index.remove(live.get(id)!.handle)
            live.delete(id)
          }
          second.forEach(add)
          setPayloads(payloads.slice(payloads.length >> 1))
          const holds = (i: Live, p: number | undefined) =>
            p !== undefined &&
            (i.low === undefined || (i.lowOpen ? p > i.low : p >= i.low)) &&
            (i.high === undefined || (i.highOpen ? p < i.high : p <= i.high))
          for (const [pb, pa] of moves) {
            const got: string[] = []
            const count = index.classify(pb, pa, (id, t, first, second) => {
              got.push(`${id}:${t}`)
              expect([first, second], `payload of ${id}`).toEqual(
                payload.get(id) === undefined ? [undefined, undefined] : [payload.get(id), id],
              )
            })
            const expected: string[] = []
            for (const [id, i] of live) {
              const was = holds(i, pb)
              const now = holds(i, pa)
              if (was || now) expected.push(`${id}:${was ? (now ? 'update' : 'leave') : 'enter'}`)
            }
            expect(got.sort()).toEqual(expected.sort())
            expect(count).toBe(expected.length)
          }
        },
      ),
      { numRuns: 300 },
    )
  })

  it('skips an interval removed by a visitor, and reuses no id a lookup still holds', () => {
    const index = new NumberIntervals<string>()
    const handles = new Map<string, number>()
    const originals: string[] = []
    for (let i = 0; i < 100; i++) {
      originals.push(`i${i}`)
      handles.set(`i${i}`, index.add(i, i + 50, `i${i}`))
    }
    index.classify(undefined, 0, () => {}) // builds the tree
    const seen: string[] = []
    const removed = new Set<string>()
    index.classify(undefined, 60, (item) => {
      expect(removed.has(item)).toBe(false)
      seen.push(item)
      // each visit removes the highest original still there and adds one that does not hold 60
      const last = originals.at(-1)!
      if (last !== item) {
        originals.pop()
        removed.add(last)
        index.remove(handles.get(last)!)
      }
      handles.set(`new${seen.length}`, index.add(1000, 2000, `new${seen.length}`))
    })
    // i10..i60 hold 60; what a visit removed is not visited later, and no new interval appears
    const holding = (items: string[]) =>
      items.filter((k) => Number(k.slice(1)) >= 10 && Number(k.slice(1)) <= 60)
    expect(seen.every((item) => item.startsWith('i'))).toBe(true)
    expect(new Set(seen).size).toBe(seen.length)
    expect(holding(seen)).toEqual(seen)
    const after: string[] = []
    index.classify(undefined, 60, (item) => after.push(item))
    expect(after.sort()).toEqual(holding(originals).sort())
    expect(removed.size).toBeGreaterThan(10)
  })
})

// --- property: the index agrees with checking every subscription ---------------------------------

const numbers = fc.constantFrom(-1, 0, 1, 2, 3, 5, 8, 2.5)
const texts = fc.constantFrom('', 'a', 'ab', 'abc', 'b', 'ba', 'B', 'é', '😀', '\uffff')
const scalar = fc.oneof(numbers, texts, fc.boolean(), fc.constant(null))
const dates = fc.constantFrom('2020-01-01', '2021-06-01T00:00:00Z', '2022-12-31', 'nope')

const recordArbitrary = fc.record(
  {
    a: fc.oneof(numbers, fc.constant(null), fc.constantFrom('3', 'x')),
    b: fc.oneof(texts, fc.constant(null)),
    c: fc.oneof(fc.array(fc.oneof(scalar, fc.constant(undefined)), { maxLength: 3 }), scalar),
    d: fc.oneof(dates, fc.constant(null)),
    n: fc.record({ x: scalar }, { requiredKeys: [] }),
  },
  { requiredKeys: [] },
)

const encode = (value: string) =>
  encodeURIComponent(value).replaceAll('*', '%2A').replaceAll('(', '%28').replaceAll(')', '%29')
const valueText = fc.oneof(
  numbers.map(String),
  texts.map(encode),
  fc.constantFrom('true', 'false', 'null', 'string:3', 'number:2', 'string:', 'boolean:true'),
)
const attribute = fc.constantFrom('a', 'b', 'c', 'n.x')

const condition: fc.Arbitrary<string> = fc.oneof(
  fc
    .tuple(attribute, fc.constantFrom('=', '==', '!=', '===', '!==', '=ne='), valueText)
    .map(([a, op, v]) => `${a}${op}${v}`),
  fc
    .tuple(
      attribute,
      fc.constantFrom('=lt=', '=le=', '=gt=', '=ge='),
      valueText.filter((v) => v !== 'null'),
    )
    .map(([a, op, v]) => `${a}${op}${v}`),
  fc
    .tuple(attribute, fc.constantFrom('=sw=', '=ew=', '=ct='), texts.map(encode))
    .map(([a, op, v]) => `${a}${op}${v}`),
  fc.tuple(attribute, texts.map(encode)).map(([a, v]) => `${a}==${v}*`),
  fc
    .tuple(attribute, fc.constantFrom('=gt=', '=ge='), numbers, fc.constantFrom('lt=', 'le='), numbers)
    .map(([a, lo, x, hi, y]) => `[${a}${lo}${x}&${hi}${y}]`),
  fc
    .tuple(
      fc.constantFrom('=gt=', '=ge=', '=lt=', '=le=', '=='),
      dates.filter((d) => d !== 'nope'),
    )
    .map(([op, v]) => `d${op}date:${encodeURIComponent(v)}`),
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

describe('QuerySubscriptionIndex agrees with checking every subscription', () => {
  it('on random records and random queries', () => {
    const seen = { enter: 0, update: 0, leave: 0 }
    fc.assert(
      fc.property(
        fc.array(filterText, { minLength: 1, maxLength: 25 }),
        fc.array(
          fc.tuple(
            fc.option(recordArbitrary, { nil: undefined }),
            fc.option(recordArbitrary, { nil: undefined }),
          ),
          {
            minLength: 1,
            maxLength: 15,
          },
        ),
        fc.array(fc.nat(), { maxLength: 5 }),
        fc.boolean(),
        (queries, changes, removals, typed) => {
          const types: TypeLookup | undefined = typed
            ? (p) => ({ a: 'ID', b: 'String', d: 'Date' })[p[0]!]
            : undefined
          const index = new QuerySubscriptionIndex<number>()
          const live = new Map<number, (record: unknown) => boolean>()
          queries.forEach((text, i) => {
            const filter = bound(text, types)
            index.add(i, filter)
            live.set(i, compileFilter(filter))
          })
          for (const r of removals) {
            const victim = r % queries.length
            index.remove(victim)
            live.delete(victim)
          }
          for (const [before, after] of changes) {
            const expected: string[] = []
            for (const [id, matches] of live) {
              const was = before !== undefined && matches(before)
              const now = after !== undefined && matches(after)
              const t: Transition | undefined = was ? (now ? 'update' : 'leave') : now ? 'enter' : undefined
              if (t) {
                expected.push(`${id}:${t}`)
                seen[t]++
              }
            }
            expect(transitions(index, before, after), JSON.stringify({ queries, before, after })).toEqual(
              expected.sort(),
            )
            const candidates = new Set(index.candidates(before, after))
            for (const e of expected) expect(candidates.has(Number(e.split(':')[0]))).toBe(true)
          }
        },
      ),
      { numRuns: 300 },
    )
    // the generators reach every transition, often
    expect(Math.min(seen.enter, seen.update, seen.leave)).toBeGreaterThan(100)
  })
})
