import { matchesFilter, parseSharedSubscription } from '@proj/topic-matcher'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { referenceMatch } from './reference.js'

describe('matchesFilter', () => {
  // [filter, topic, matches, clause]
  const rows: Array<[string, string, boolean, string]> = [
    ['sport/tennis/player1/#', 'sport/tennis/player1', true, '[MQTT-4.7.1-1] # matches the parent level'],
    ['sport/tennis/player1/#', 'sport/tennis/player1/ranking', true, '§4.7.1.2 one child level'],
    ['sport/tennis/player1/#', 'sport/tennis/player1/score/wimbledon', true, '§4.7.1.2 many child levels'],
    ['sport/#', 'sport', true, '§4.7.1.2 "sport/#" also matches "sport"'],
    ['#', 'sport/tennis', true, '§4.7.1.2 # matches everything'],
    ['#', '/', true, '# matches empty levels'],
    ['sport/tennis/+', 'sport/tennis/player1', true, '[MQTT-4.7.1-2] + matches one level'],
    ['sport/tennis/+', 'sport/tennis/player1/ranking', false, '§4.7.1.3 + does not match two levels'],
    ['sport/+', 'sport', false, '§4.7.1.3 "sport/+" does not match "sport"'],
    ['sport/+', 'sport/', true, '§4.7.1.3 "sport/+" matches "sport/" (an empty level)'],
    ['+', 'sport', true, '+ alone matches a one-level topic'],
    ['+', '/finance', false, '§4.7.1.3 "+" does not match "/finance"'],
    ['+/+', '/finance', true, '§4.7.1.3 "+/+" matches "/finance"'],
    ['/+', '/finance', true, '§4.7.1.3 "/+" matches "/finance"'],
    ['+/tennis/#', 'sport/tennis', true, '+ and #'],
    ['sport/+/player1', 'sport/tennis/player1', true, '+ in the middle'],
    ['#', '$SYS/uptime', false, '[MQTT-4.7.2-1] # does not match $-topics'],
    ['+/monitor/Clients', '$SYS/monitor/Clients', false, '[MQTT-4.7.2-1] + does not match $-topics'],
    ['$SYS/#', '$SYS/monitor/Clients', true, '§4.7.2 "$SYS/#" matches'],
    ['$SYS/monitor/+', '$SYS/monitor/Clients', true, '§4.7.2 "$SYS/monitor/+" matches'],
    ['a/+/#', 'a/$b/c', true, 'only a leading $ is special'],
    ['Sport', 'sport', false, '[MQTT-4.7.3-4] case-sensitive, no normalization'],
    ['sport ', 'sport', false, '[MQTT-4.7.3-4] no trimming'],
    ['a/b', 'a/b/c', false, 'a prefix is not a match'],
    ['a/b/c', 'a/b', false, 'a longer filter is not a match'],
    ['a/#', 'ab', false, '# after a separator needs the separator'],
    ['a//b', 'a//b', true, 'empty levels compare equal'],
    ['a/+/b', 'a//b', true, '+ matches an empty level'],
    ['a/+', 'a', false, '+ needs a level'],
  ]
  for (const [filter, topic, expected, clause] of rows) {
    it(`${expected ? 'matches' : 'does not match'} ${JSON.stringify(topic)} with ${JSON.stringify(filter)} ${clause}`, () => {
      expect(matchesFilter(filter, topic)).toBe(expected)
      expect(referenceMatch(filter, topic)).toBe(expected)
    })
  }

  it('agrees with the brute-force reference on random filters and topics', () => {
    const level = fc.constantFrom('a', 'b', '', '$x', 'ab')
    const topic = fc.array(level, { minLength: 1, maxLength: 5 }).map((l) => l.join('/'))
    const filter = fc
      .tuple(fc.array(fc.constantFrom('a', 'b', '', '+', '$x'), { minLength: 1, maxLength: 5 }), fc.boolean())
      .map(([l, hash]) => (hash ? [...l, '#'] : l).join('/'))
    const anyFilter = fc.oneof(filter, fc.constant('#'))
    fc.assert(
      fc.property(anyFilter, topic, (f, t) => {
        expect(matchesFilter(f, t)).toBe(referenceMatch(f, t))
      }),
      { seed: 7, numRuns: 10_000 },
    )
  })
})

describe('parseSharedSubscription', () => {
  it('splits $share/{group}/{filter} (§4.8.2)', () => {
    expect(parseSharedSubscription('$share/workers/jobs/#')).toEqual({ group: 'workers', filter: 'jobs/#' })
    expect(parseSharedSubscription('$share/g/+')).toEqual({ group: 'g', filter: '+' })
    expect(parseSharedSubscription('$share/g//a')).toEqual({ group: 'g', filter: '/a' })
  })

  it('returns null for ordinary filters', () => {
    expect(parseSharedSubscription('jobs/#')).toBeNull()
    expect(parseSharedSubscription('$share')).toBeNull()
    expect(parseSharedSubscription('$SYS/#')).toBeNull()
  })

  it('returns null for invalid shared subscriptions', () => {
    expect(parseSharedSubscription('$share//a')).toBeNull() // [MQTT-4.8.2-1]
    expect(parseSharedSubscription('$share/a+b/x')).toBeNull() // [MQTT-4.8.2-2]
    expect(parseSharedSubscription('$share/g#/x')).toBeNull() // [MQTT-4.8.2-2]
    expect(parseSharedSubscription('$share/g')).toBeNull() // [MQTT-4.8.2-2]
    expect(parseSharedSubscription('$share/g/a/#/b')).toBeNull() // [MQTT-4.7.1-1]
  })
})
