import { matchesFilter } from '@proj/topic-matcher'
import { describe, expect, it } from 'vitest'
import { literalPrefix, scanPrefix, splitAtWildcard } from '../src/filter-prefix.js'

describe('filter prefixes', () => {
  it.each([
    ['Dog/1', 'Dog/1', 'Dog/1'],
    ['Dog/+', 'Dog', 'Dog/'],
    ['Dog/#', 'Dog', 'Dog'],
    ['Dog/a/+/b', 'Dog/a', 'Dog/a/'],
    ['+/a', '', ''],
    ['#', '', ''],
  ])('%s: literal prefix %j, scan prefix %j', (filter, literal, scan) => {
    const split = splitAtWildcard(filter)
    expect(literalPrefix(split)).toBe(literal)
    expect(scanPrefix(split)).toBe(scan)
  })

  it('every topic a filter matches starts with its scan prefix', () => {
    const topics = ['Dog', 'Dog/', 'Dog/1', 'Dog/1/x', 'Dogs/1', 'a/Dog/1', '/Dog', 'x']
    for (const filter of ['Dog/+', 'Dog/#', 'Dog/+/x', '+/Dog/+', '#', 'Dog/1/#']) {
      const prefix = scanPrefix(splitAtWildcard(filter))
      for (const topic of topics)
        if (matchesFilter(filter, topic)) expect(topic.startsWith(prefix), `${filter} ${topic}`).toBe(true)
    }
  })
})
