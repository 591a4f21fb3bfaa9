import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { HIGH_OPEN, LOW_OPEN, NumberTree } from '../src/number-tree.js'

// The flat tree on its own (NumberIntervals' tests cover it with pending ids, payload and rebuilds):
// built from any intervals, including unbounded ones, equal bounds of both kinds and points at the
// nodes' centers, it finds exactly what a check of every interval finds, and an interval whose entry
// is cleared is skipped, whether its transitions are taken item by item or as runs.
const bound = fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined })
const interval = fc.record({ a: bound, b: bound, lowOpen: fc.boolean(), highOpen: fc.boolean() })
const point = fc.option(fc.integer({ min: -2, max: 42 }), { nil: undefined })

type Interval = { low: number; high: number; flags: number }

function build(list: { a?: number; b?: number; lowOpen: boolean; highOpen: boolean }[]) {
  const n = list.length
  const source = {
    lows: new Float64Array(n + 3),
    highs: new Float64Array(n + 3),
    // bits the tree must ignore (NumberIntervals' REMOVED and PENDING)
    flags: new Uint8Array(n + 3).fill(4 | 8),
    items: [] as unknown[],
    first: [] as unknown[],
    second: [] as unknown[],
  }
  const intervals: Interval[] = []
  list.forEach((i, id) => {
    const [low, high] = i.a !== undefined && i.b !== undefined && i.a > i.b ? [i.b, i.a] : [i.a, i.b]
    const flags =
      (i.lowOpen && low !== undefined ? LOW_OPEN : 0) | (i.highOpen && high !== undefined ? HIGH_OPEN : 0)
    intervals.push({ low: low ?? -Infinity, high: high ?? Infinity, flags })
    source.lows[id] = low ?? -Infinity
    source.highs[id] = high ?? Infinity
    source.flags[id] = flags | 4 | 8
    source.items[id] = id
    source.first[id] = `f${id}`
    source.second[id] = id * 2
  })
  return { tree: new NumberTree([...list.keys()], source), intervals }
}

const holds = (i: Interval, p: number | undefined) =>
  p !== undefined &&
  (i.flags & LOW_OPEN ? p > i.low : p >= i.low) &&
  (i.flags & HIGH_OPEN ? p < i.high : p <= i.high)

describe('NumberTree', () => {
  it('classifies and collects exactly, with each entry, skipping cleared ones', () => {
    fc.assert(
      fc.property(
        fc.array(interval, { maxLength: 120 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.array(fc.tuple(point, point), { minLength: 1, maxLength: 6 }),
        (list, clears, moves) => {
          const { tree, intervals } = build(list)
          const cleared = new Set<number>()
          for (const c of clears) {
            if (list.length === 0) break
            const id = c % list.length
            cleared.add(id)
            tree.setEntry(id, undefined, undefined, undefined)
          }
          expect([...tree.ids].sort((x, y) => x - y)).toEqual([...list.keys()])
          for (const [pb, pa] of moves) {
            const got: string[] = []
            const count = tree.classify<number>(pb, pa, (id, t, first, second) => {
              expect([first, second]).toEqual([`f${id}`, id * 2])
              got.push(`${id}:${t}`)
            })
            const expected: string[] = []
            intervals.forEach((i, id) => {
              if (cleared.has(id)) return
              const was = holds(i, pb)
              const now = holds(i, pa)
              if (was || now) expected.push(`${id}:${was ? (now ? 'update' : 'leave') : 'enter'}`)
            })
            expect(got.sort()).toEqual(expected.sort())
            expect(count).toBe(expected.length)
            // The same through a run visitor: runs of one transition, the rest item by item.
            const byRuns: string[] = []
            const runCount = tree.classify<number>(
              pb,
              pa,
              (id, t) => byRuns.push(`${id}:${t}`),
              (items, payloads, from, to, t) => {
                expect(from).toBeLessThan(to)
                let n = 0
                for (let i = from; i < to; i++) {
                  const id = items[i] as number | undefined
                  if (id === undefined) {
                    // A removed item has no payload either (a run visitor may test the payload first).
                    expect([payloads[2 * i], payloads[2 * i + 1]]).toEqual([undefined, undefined])
                    continue
                  }
                  expect([payloads[2 * i], payloads[2 * i + 1]]).toEqual([`f${id}`, id * 2])
                  byRuns.push(`${id}:${t}`)
                  n++
                }
                return n
              },
            )
            expect(byRuns.sort()).toEqual(expected)
            expect(runCount).toBe(expected.length)
            if (pb === undefined || pa === undefined) continue
            const [low, high] = pb <= pa ? [pb, pa] : [pa, pb]
            const found: number[] = []
            tree.collect(low, high, found)
            const meets = intervals
              .map((i, id) => ({ i, id }))
              .filter(
                ({ i }) =>
                  (i.flags & LOW_OPEN ? high > i.low : high >= i.low) &&
                  (i.flags & HIGH_OPEN ? low < i.high : low <= i.high),
              )
              .map(({ id }) => id)
            expect(found.sort((x, y) => x - y)).toEqual(meets)
          }
        },
      ),
      { numRuns: 300 },
    )
  })

  it('keeps a node of unbounded intervals only, and an empty tree', () => {
    const { tree } = build([
      { lowOpen: false, highOpen: false },
      { lowOpen: true, highOpen: true },
    ])
    const got: string[] = []
    tree.classify<number>(5, undefined, (id, t) => got.push(`${id}:${t}`))
    expect(got.sort()).toEqual(['0:leave', '1:leave'])
    const empty = build([]).tree
    expect(empty.classify(1, 2, () => expect.unreachable())).toBe(0)
    const out: number[] = []
    empty.collect(0, 10, out)
    expect(out).toEqual([])
  })
})
