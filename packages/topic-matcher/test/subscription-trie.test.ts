import {
  createSubscriptionTrie,
  type QoS,
  SubscriptionTrie,
  TopicError,
  type TrieMatch,
} from '@proj/topic-matcher'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { referenceMatch, referenceValidFilter } from './reference.js'

/** Sorted, plain form of a match for comparisons. */
function normalize<S>(m: TrieMatch<S, unknown>) {
  return {
    subscribers: m.subscribers
      .map((s) => ({
        subscriber: s.subscriber,
        qos: s.qos,
        ids: [...s.subscriptionIds].sort((a, b) => a - b),
        filters: s.subscriptions.map((x) => x.filter).sort(),
      }))
      .sort((a, b) => String(a.subscriber).localeCompare(String(b.subscriber))),
    shared: m.shared
      .map((g) => ({
        group: g.group,
        filter: g.filter,
        members: g.members.map((x) => String(x.subscriber)).sort(),
      }))
      .sort((a, b) => `${a.group}/${a.filter}`.localeCompare(`${b.group}/${b.filter}`)),
  }
}

describe('SubscriptionTrie', () => {
  it('returns each subscriber once with the highest QoS of its matching filters [MQTT-3.3.4-2]', () => {
    const trie = new SubscriptionTrie<string>()
    trie.add('Dog/+', 'a', { qos: 0 })
    trie.add('Dog/#', 'a', { qos: 2 })
    trie.add('Dog/123', 'a', { qos: 1 })
    trie.add('Cat/#', 'b', { qos: 1 })
    const m = trie.match('Dog/123')
    expect(m.subscribers).toHaveLength(1)
    expect(m.subscribers[0]).toMatchObject({ subscriber: 'a', qos: 2 })
    expect(m.subscribers[0]!.subscriptions.map((s) => s.filter).sort()).toEqual(['Dog/#', 'Dog/+', 'Dog/123'])
    expect(m.shared).toEqual([])
  })

  it('collects the Subscription Identifiers of every matching subscription [MQTT-3.3.4-4]', () => {
    const trie = new SubscriptionTrie<string>()
    trie.add('a/+', 's', { qos: 0, subscriptionId: 1 })
    trie.add('a/#', 's', { qos: 1 })
    trie.add('+/b', 's', { qos: 0, subscriptionId: 3 })
    trie.add('a/b', 't', { qos: 0 })
    const m = normalize(trie.match('a/b'))
    expect(m.subscribers).toEqual([
      { subscriber: 's', qos: 1, ids: [1, 3], filters: ['+/b', 'a/#', 'a/+'] },
      { subscriber: 't', qos: 0, ids: [], filters: ['a/b'] },
    ])
  })

  it('replaces the options when a subscriber subscribes to the same filter again [MQTT-3.8.4-3]', () => {
    const trie = createSubscriptionTrie<string, { noLocal: boolean }>()
    expect(trie.add('a', 's', { qos: 0, data: { noLocal: false } })).toBe(true)
    expect(trie.add('a', 's', { qos: 2, subscriptionId: 9, data: { noLocal: true } })).toBe(false)
    expect(trie.size).toBe(1)
    const [only] = trie.match('a').subscribers
    expect(only).toMatchObject({ qos: 2, subscriptionIds: [9] })
    expect(only!.subscriptions[0]!.data).toEqual({ noLocal: true })
  })

  it('does not match $-topics with a leading wildcard [MQTT-4.7.2-1]', () => {
    const trie = new SubscriptionTrie<string>()
    trie.add('#', 'all', { qos: 0 })
    trie.add('+/uptime', 'plus', { qos: 0 })
    trie.add('$SYS/#', 'sys', { qos: 0 })
    trie.add('$share/g/#', 'shared-all', { qos: 0 })
    const m = trie.match('$SYS/uptime')
    expect(m.subscribers.map((s) => s.subscriber)).toEqual(['sys'])
    expect(m.shared).toEqual([])
    expect(
      trie
        .match('x/uptime')
        .subscribers.map((s) => s.subscriber)
        .sort(),
    ).toEqual(['all', 'plus'])
  })

  it('matches # on the parent level and + on empty levels', () => {
    const trie = new SubscriptionTrie<string>()
    trie.add('sport/#', 'hash', { qos: 0 })
    trie.add('sport/+', 'plus', { qos: 0 })
    expect(trie.match('sport').subscribers.map((s) => s.subscriber)).toEqual(['hash'])
    expect(
      trie
        .match('sport/')
        .subscribers.map((s) => s.subscriber)
        .sort(),
    ).toEqual(['hash', 'plus'])
    expect(trie.match('sports').subscribers).toEqual([])
  })

  it('groups shared subscriptions by (group, filter) and reports them apart (§4.8.2)', () => {
    const trie = new SubscriptionTrie<string>()
    trie.add('$share/workers/jobs/#', 'w1', { qos: 1 })
    trie.add('$share/workers/jobs/#', 'w2', { qos: 0 })
    trie.add('$share/workers/jobs/+', 'w3', { qos: 0 })
    trie.add('$share/audit/jobs/#', 'a1', { qos: 2 })
    trie.add('jobs/#', 'w1', { qos: 0 })
    const m = normalize(trie.match('jobs/42'))
    expect(m.subscribers).toEqual([{ subscriber: 'w1', qos: 0, ids: [], filters: ['jobs/#'] }])
    expect(m.shared).toEqual([
      { group: 'audit', filter: 'jobs/#', members: ['a1'] },
      { group: 'workers', filter: 'jobs/#', members: ['w1', 'w2'] },
      { group: 'workers', filter: 'jobs/+', members: ['w3'] },
    ])
    expect(trie.size).toBe(5)
    expect(trie.get('$share/workers/jobs/#', 'w1')).toMatchObject({ group: 'workers', qos: 1 })
  })

  it('removes subscriptions, shared members and whole subscribers', () => {
    const trie = new SubscriptionTrie<string>()
    trie.add('a/b', 's', { qos: 0 })
    trie.add('a/#', 's', { qos: 0 })
    trie.add('$share/g/a/#', 's', { qos: 0 })
    trie.add('$share/g/a/#', 't', { qos: 0 })
    expect(trie.remove('a/b', 'nobody')).toBe(false)
    expect(trie.remove('x', 's')).toBe(false)
    expect(trie.remove('a/b', 's')).toBe(true)
    expect(trie.remove('a/b', 's')).toBe(false)
    expect(trie.size).toBe(3)
    expect(trie.remove('$share/g/a/#', 't')).toBe(true)
    expect(normalize(trie.match('a/b')).shared).toEqual([{ group: 'g', filter: 'a/#', members: ['s'] }])
    expect(trie.removeSubscriber('s')).toBe(2)
    expect(trie.size).toBe(0)
    expect(trie.match('a/b')).toEqual({ subscribers: [], shared: [] })
    expect(trie.subscriptionsOf('s')).toEqual([])
  })

  it('rejects invalid filters with a TopicError', () => {
    const trie = new SubscriptionTrie<string>()
    expect(() => trie.add('a/#/b', 's', { qos: 0 })).toThrow(TopicError)
    expect(() => trie.add('$share/+/a', 's', { qos: 0 })).toThrow(
      expect.objectContaining({ code: 'TOPIC_INVALID_SHARE_NAME' }),
    )
    expect(trie.size).toBe(0)
  })

  it('forEachMatch reports the same as match and reuses its objects', () => {
    const trie = new SubscriptionTrie<string>()
    trie.add('a/+', 's', { qos: 1, subscriptionId: 5 })
    trie.add('a/#', 's', { qos: 0, subscriptionId: 6 })
    trie.add('#', 't', { qos: 0 })
    trie.add('$share/g/a/b', 'u', { qos: 2 })
    const seen: unknown[] = []
    const objects = new Set<unknown>()
    const groups: string[] = []
    for (let round = 0; round < 3; round++) {
      seen.length = 0
      const n = trie.forEachMatch(
        'a/b',
        (m) => {
          objects.add(m)
          seen.push({ subscriber: m.subscriber, qos: m.qos, ids: [...m.subscriptionIds].sort() })
        },
        (g) => groups.push(`${g.group}:${g.filter}:${g.members.length}`),
      )
      expect(n).toBe(3)
    }
    expect(seen.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))).toEqual([
      { subscriber: 's', qos: 1, ids: [5, 6] },
      { subscriber: 't', qos: 0, ids: [] },
    ])
    expect(objects.size).toBe(2)
    expect(groups).toEqual(['g:a/b:1', 'g:a/b:1', 'g:a/b:1'])
    expect(trie.hasMatch('a/b')).toBe(true)
    expect(trie.hasMatch('$x')).toBe(false)
  })

  it('allows match() from inside a forEachMatch callback', () => {
    const trie = new SubscriptionTrie<string>()
    trie.add('a', 's', { qos: 0 })
    trie.add('b', 't', { qos: 0 })
    const inner: string[] = []
    trie.forEachMatch('a', () => {
      trie.forEachMatch('b', (m) => inner.push(m.subscriber))
      inner.push(...trie.match('a').subscribers.map((m) => m.subscriber))
    })
    expect(inner).toEqual(['t', 's'])
  })

  it('matches a topic seen before as the first time: after others, inside a callback, as another string', () => {
    const trie = new SubscriptionTrie<string>()
    trie.add('a/b', 's', { qos: 0 })
    trie.add('a/+/c', 't', { qos: 0 })
    trie.add('x', 'u', { qos: 0 })
    const subscribers = (topic: string) => {
      const found: string[] = []
      trie.forEachMatch(topic, (m) => found.push(m.subscriber))
      return found.sort()
    }
    expect(subscribers('a/b')).toEqual(['s'])
    expect(subscribers('a/b')).toEqual(['s'])
    expect(subscribers('a/b/c')).toEqual(['t'])
    expect(subscribers(['a', 'b'].join('/'))).toEqual(['s'])
    const nested: string[][] = []
    trie.forEachMatch('a/b', () => {
      nested.push(subscribers('x'), subscribers('a/b/c'))
    })
    expect(nested).toEqual([['u'], ['t']])
    expect(subscribers('a/b')).toEqual(['s'])
    expect(subscribers('x')).toEqual(['u'])
  })

  it('agrees with a brute-force matcher after random adds and removes (fast-check)', () => {
    const level = fc.constantFrom('a', 'b', '', '$s')
    const filterArb = fc
      .tuple(
        fc.array(fc.constantFrom('a', 'b', '', '+', '$s'), { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        fc.boolean(),
      )
      .map(([levels, hash, shared]) => {
        const f = (hash ? [...levels, '#'] : levels).join('/')
        return shared ? `$share/${levels.length % 2 ? 'g1' : 'g2'}/${f}` : f
      })
      .filter(referenceValidFilter)
    const op = fc.record({
      remove: fc.boolean(),
      filter: fc.oneof(filterArb, fc.constant('#')),
      subscriber: fc.constantFrom('s1', 's2', 's3', 's4'),
      qos: fc.constantFrom<QoS>(0, 1, 2),
      id: fc.option(fc.integer({ min: 1, max: 100 }), { nil: undefined }),
    })
    const topicArb = fc.array(level, { minLength: 1, maxLength: 5 }).map((l) => l.join('/'))
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 40 }),
        fc.array(topicArb, { minLength: 1, maxLength: 10 }),
        (ops, topics) => {
          const trie = new SubscriptionTrie<string>()
          // The reference: a flat map of (subscriber, filter) -> options, matched by brute force.
          const ref = new Map<
            string,
            { subscriber: string; filter: string; qos: QoS; id: number | undefined }
          >()
          for (const o of ops) {
            const key = `${o.subscriber}\u0000${o.filter}`
            if (o.remove) {
              expect(trie.remove(o.filter, o.subscriber)).toBe(ref.delete(key))
            } else {
              trie.add(o.filter, o.subscriber, { qos: o.qos, subscriptionId: o.id })
              ref.set(key, { subscriber: o.subscriber, filter: o.filter, qos: o.qos, id: o.id })
            }
          }
          expect(trie.size).toBe(ref.size)
          for (const topic of topics) {
            const subscribers = new Map<
              string,
              { subscriber: string; qos: QoS; ids: number[]; filters: string[] }
            >()
            const shared = new Map<string, { group: string; filter: string; members: string[] }>()
            for (const s of ref.values()) {
              const m = /^\$share\/([^/]+)\/(.*)$/.exec(s.filter)
              const inner = m ? m[2]! : s.filter
              if (!referenceMatch(inner, topic)) continue
              if (m) {
                const k = `${m[1]}/${inner}`
                const g = shared.get(k) ?? { group: m[1]!, filter: inner, members: [] }
                g.members.push(s.subscriber)
                shared.set(k, g)
              } else {
                const r = subscribers.get(s.subscriber) ?? {
                  subscriber: s.subscriber,
                  qos: 0 as QoS,
                  ids: [],
                  filters: [],
                }
                r.qos = Math.max(r.qos, s.qos) as QoS
                if (s.id !== undefined) r.ids.push(s.id)
                r.filters.push(s.filter)
                subscribers.set(s.subscriber, r)
              }
            }
            const expected = normalize({
              subscribers: [...subscribers.values()].map((r) => ({
                subscriber: r.subscriber,
                qos: r.qos,
                subscriptionIds: r.ids,
                subscriptions: r.filters.map((filter) => ({ filter }) as never),
              })),
              shared: [...shared.values()].map((g) => ({
                ...g,
                members: g.members.map((subscriber) => ({ subscriber }) as never),
              })),
            })
            expect(normalize(trie.match(topic))).toEqual(expected)
          }
        },
      ),
      { seed: 1234, numRuns: 500 },
    )
  })

  it('prunes empty nodes so that removing everything leaves an empty trie', () => {
    const trie = new SubscriptionTrie<number>()
    const filters = ['a/b/c', 'a/+/c', 'a/#', '+/+/+', '#', 'x//y', '$share/g/a/b']
    for (const [i, f] of filters.entries()) trie.add(f, i, { qos: 0 })
    for (const [i, f] of filters.entries()) expect(trie.remove(f, i)).toBe(true)
    expect(trie.size).toBe(0)
    // Re-adding after pruning works as on a fresh trie.
    trie.add('a/b/c', 1, { qos: 1 })
    expect(trie.match('a/b/c').subscribers).toHaveLength(1)
    expect(trie.match('a/b').subscribers).toHaveLength(0)
  })
})

describe('SubscriptionTrie result stability', () => {
  it('leaves results already returned unchanged when a subscription is replaced', () => {
    const trie = new SubscriptionTrie<string>()
    trie.add('a/b', 's', { qos: 0, subscriptionId: 1 })
    const before = trie.match('a/b').subscribers[0]!
    trie.add('a/b', 's', { qos: 2, subscriptionId: 2 })
    expect(before).toMatchObject({ qos: 0, subscriptionIds: [1] })
    expect(trie.match('a/b').subscribers[0]).toMatchObject({ qos: 2, subscriptionIds: [2] })
  })

  it('deduplicates a subscriber with more filters than the overlap-check limit', () => {
    const trie = new SubscriptionTrie<string>()
    for (let i = 0; i < 100; i++) trie.add(`x/${i}`, 'many', { qos: 0, subscriptionId: i + 1 })
    trie.add('x/+', 'many', { qos: 1, subscriptionId: 500 })
    trie.add('x/7', 'other', { qos: 2 })
    const m = normalize(trie.match('x/7'))
    expect(m.subscribers).toEqual([
      { subscriber: 'many', qos: 1, ids: [8, 500], filters: ['x/+', 'x/7'] },
      { subscriber: 'other', qos: 2, ids: [], filters: ['x/7'] },
    ])
    // Removing back below the limit still deduplicates correctly.
    for (let i = 10; i < 100; i++) trie.remove(`x/${i}`, 'many')
    expect(normalize(trie.match('x/3')).subscribers).toEqual([
      { subscriber: 'many', qos: 1, ids: [4, 500], filters: ['x/+', 'x/3'] },
    ])
    trie.remove('x/+', 'many')
    expect(normalize(trie.match('x/3')).subscribers).toEqual([
      { subscriber: 'many', qos: 0, ids: [4], filters: ['x/3'] },
    ])
  })

  it('stops deduplicating once the overlapping filter is removed, still reporting each subscriber once', () => {
    const trie = new SubscriptionTrie<string>()
    trie.add('a/#', 's', { qos: 0 })
    trie.add('a/b', 's', { qos: 1 })
    trie.add('c', 's', { qos: 2 })
    expect(normalize(trie.match('a/b')).subscribers).toEqual([
      { subscriber: 's', qos: 1, ids: [], filters: ['a/#', 'a/b'] },
    ])
    trie.remove('a/#', 's')
    expect(normalize(trie.match('a/b')).subscribers).toEqual([
      { subscriber: 's', qos: 1, ids: [], filters: ['a/b'] },
    ])
    expect(normalize(trie.match('c')).subscribers).toEqual([
      { subscriber: 's', qos: 2, ids: [], filters: ['c'] },
    ])
  })
})

describe('SubscriptionTrie results', () => {
  it('serialize to JSON without the trie internals', () => {
    const trie = new SubscriptionTrie<string, { nl: boolean }>()
    trie.add('a/+', 's', { qos: 1, subscriptionId: 3, data: { nl: true } })
    trie.add('a/#', 't', { qos: 0 })
    trie.add('a/b', 't', { qos: 2 })
    const json = JSON.parse(JSON.stringify(trie.match('a/b')))
    const s = json.subscribers.find((m: { subscriber: string }) => m.subscriber === 's')
    expect(s).toMatchObject({ subscriber: 's', qos: 1, subscriptionIds: [3], data: { nl: true } })
    const t = json.subscribers.find((m: { subscriber: string }) => m.subscriber === 't')
    expect(t.qos).toBe(2)
    expect(t.subscriptions).toHaveLength(2)
  })
})
