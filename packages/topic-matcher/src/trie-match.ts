import type { SharedGroupMatch, SubscriberMatch } from './subscription-types.js'
import { type Entry, MatchSlot, type TrieNode } from './trie-node.js'

/** Collects one match: plain subscriber results (deduplicated) and shared groups. */
export interface Collector<S, O> {
  subscribers: SubscriberMatch<S, O>[]
  count: number
  shared: SharedGroupMatch<S, O>[]
  sharedCount: number
  /** MatchSlots kept for reuse by forEachMatch; null for match(), whose results are the caller's. */
  pool: MatchSlot<S, O>[] | null
  poolUsed: number
}

export const newCollector = <S, O>(pool: MatchSlot<S, O>[] | null): Collector<S, O> => ({
  subscribers: [],
  count: 0,
  shared: [],
  sharedCount: 0,
  pool,
  poolUsed: 0,
})

/**
 * The walk of one match over a trie: the topic split into levels (reused between calls), then every
 * node the topic reaches visited once, collecting its subscriptions into a Collector.
 */
export class TrieWalk<S, O> {
  /** Match generation: a subscriber already seen in this match has `state.gen === gen`. */
  #gen = 0
  /** Topic levels of the current match, reused between calls. */
  readonly #levels: string[] = []
  #levelCount = 0
  /** The topic `#levels` hold. */
  #lastTopic: string | undefined = undefined

  constructor(readonly root: TrieNode<S, O>) {}

  #split(topic: string): void {
    const levels = this.#levels
    let n = 0
    let start = 0
    for (;;) {
      const slash = topic.indexOf('/', start)
      if (slash === -1) {
        levels[n++] = start === 0 ? topic : topic.slice(start)
        break
      }
      levels[n++] = topic.slice(start, slash)
      start = slash + 1
    }
    this.#levelCount = n
    this.#lastTopic = topic
  }

  collect(topic: string, out: Collector<S, O>): void {
    // A topic like the last one (a publisher sending to one topic) keeps its levels: no strings sliced.
    if (topic !== this.#lastTopic) this.#split(topic)
    this.#gen++
    const dollar = topic.charCodeAt(0) === 36
    this.#visit(this.root, 0, dollar, out)
  }

  #visit(node: TrieNode<S, O>, i: number, dollar: boolean, out: Collector<S, O>): void {
    // [MQTT-4.7.2-1] a filter starting with a wildcard does not match a topic starting with '$'
    const wild = !(dollar && i === 0)
    const hash = node.hash
    if (hash !== undefined && wild) this.#take(hash, out)
    if (i === this.#levelCount) {
      this.#take(node, out)
      return
    }
    const children = node.children
    if (children !== undefined) {
      const child = children.get(this.#levels[i]!)
      if (child !== undefined) this.#visit(child, i + 1, dollar, out)
    }
    const plus = node.plus
    if (plus !== undefined && wild) this.#visit(plus, i + 1, dollar, out)
  }

  #take(node: TrieNode<S, O>, out: Collector<S, O>): void {
    const subscribers = out.subscribers
    const solo = node.solo
    if (solo !== undefined) {
      // No other subscription of these subscribers can match the same topic: each entry is a result.
      let count = out.count
      for (let e = 0; e < solo.length; e++) subscribers[count++] = solo[e]!
      out.count = count
    }
    const overlapping = node.overlapping
    if (overlapping !== undefined) {
      const gen = this.#gen
      for (let e = 0; e < overlapping.length; e++) {
        const entry = overlapping[e]!
        const state = entry.state
        if (state.gen !== gen) {
          state.gen = gen
          state.slot = out.count
          subscribers[out.count++] = entry
          continue
        }
        // The same subscriber through another of its filters [MQTT-3.3.4-2] [MQTT-3.3.4-4].
        let m = subscribers[state.slot]!
        if (!(m instanceof MatchSlot)) m = subscribers[state.slot] = this.#slotFrom(m as Entry<S, O>, out)
        const slot = m as MatchSlot<S, O>
        if (entry.qos > slot.qos) slot.qos = entry.qos
        slot.subscriptions.push(entry)
        if (entry.subscriptionId !== undefined) slot.subscriptionIds.push(entry.subscriptionId)
      }
    }
    const shared = node.shared
    if (shared !== undefined) {
      for (const g of shared.values()) out.shared[out.sharedCount++] = g
    }
  }

  #slotFrom(first: Entry<S, O>, out: Collector<S, O>): MatchSlot<S, O> {
    const pool = out.pool
    if (pool === null)
      return new MatchSlot(first.subscriber, first.qos, first.subscriptionIds.slice(), [first])
    let slot = pool[out.poolUsed]
    if (slot === undefined) pool[out.poolUsed] = slot = new MatchSlot(first.subscriber, first.qos, [], [])
    out.poolUsed++
    slot.subscriber = first.subscriber
    slot.qos = first.qos
    slot.subscriptionIds.length = 0
    if (first.subscriptionId !== undefined) slot.subscriptionIds.push(first.subscriptionId)
    slot.subscriptions.length = 0
    slot.subscriptions.push(first)
    return slot
  }
}
