import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { filterCovers, filtersOverlap } from '../src/index.js'
import { referenceFilterCovers, referenceMatch } from './reference.js'

const levels = ['a', 'b', '', '$s']
const topics: string[] = []
const grow = (prefix: string[], depth: number): void => {
  if (prefix.length > 0) topics.push(prefix.join('/'))
  if (depth === 0) return
  for (const l of levels) grow([...prefix, l], depth - 1)
}
grow([], 4)
const filterArb = fc
  .tuple(fc.array(fc.constantFrom('a', 'b', '', '+', '$s'), { minLength: 1, maxLength: 3 }), fc.boolean())
  .map(([l, hash]) => (hash ? [...l, '#'] : l).join('/'))
const anyFilter = fc.oneof(filterArb, fc.constant('#'))

describe('filtersOverlap', () => {
  it('is true exactly when some topic matches both filters (checked over a small topic universe)', () => {
    fc.assert(
      fc.property(anyFilter, anyFilter, (f, g) => {
        const witness = topics.some((t) => referenceMatch(f, t) && referenceMatch(g, t))
        expect(filtersOverlap(f, g)).toBe(witness)
        expect(filtersOverlap(g, f)).toBe(witness)
      }),
      { seed: 99, numRuns: 3000 },
    )
  }, 30_000)
})

describe('filterCovers', () => {
  it.each([
    ['#', 'a/b', true],
    ['a/#', 'a', true],
    ['a/#', 'a/+/c', true],
    ['a/+', 'a/b', true],
    ['a/+', 'a/+', true],
    ['a/+', 'a/#', false],
    ['a/b', 'a/+', false],
    ['a/b', 'a/b/c', false],
    ['a/b/c', 'a/b', false],
    ['a/', 'a/+', false],
    ['a/+', 'a/', true],
    ['#', '$SYS/#', false], // [MQTT-4.7.2-1]
    ['+/#', '$SYS/x', false],
    ['$SYS/#', '$SYS/x', true],
  ])('filterCovers(%j, %j) is %j', (rule, filter, expected) => {
    expect(filterCovers(rule, filter)).toBe(expected)
  })

  it('answers as the level-by-level definition does, and never claims a topic the rule misses', () => {
    fc.assert(
      fc.property(anyFilter, anyFilter, (rule, filter) => {
        const covers = filterCovers(rule, filter)
        expect(covers).toBe(referenceFilterCovers(rule, filter))
        if (covers)
          expect(topics.every((t) => !referenceMatch(filter, t) || referenceMatch(rule, t))).toBe(true)
      }),
      { seed: 7, numRuns: 1000 },
    )
  }, 30_000)
})
