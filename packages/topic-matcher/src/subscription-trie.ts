import { filtersOverlap } from './filter-relations.js'
import type {
  SharedGroupMatch,
  SubscriberMatch,
  Subscription,
  SubscriptionOptions,
  TrieMatch,
} from './subscription-types.js'
import { type Collector, newCollector, TrieWalk } from './trie-match.js'
import {
  Entry,
  insertPlain,
  nodeFor,
  prune,
  removePlain,
  SharedGroup,
  SubscriberState,
  setOverlaps,
  swapRemove,
  TrieNode,
} from './trie-node.js'
import { assertTopicFilter, SHARE_PREFIX } from './validate.js'

/** Above this many plain subscriptions per subscriber, overlap is assumed instead of computed. */
const OVERLAP_CHECK_LIMIT = 64

/**
 * The subscriptions of a broker, indexed by filter level for matching topics fast.
 * Subscribers (`S`) are compared by identity (a client object, a session id...). One subscriber
 * has at most one subscription per filter: adding the same filter again replaces its options
 * [MQTT-3.8.4-3]. `$share/{group}/{filter}` subscriptions are grouped by (group, filter) and
 * reported apart, so that the caller can pick one member per group (MQTT 5.0 §4.8.2).
 *
 * @example
 * const trie = new SubscriptionTrie<string>()
 * trie.add('Dog/+', 'client-a', { qos: 1, subscriptionId: 7 })
 * trie.add('Dog/#', 'client-a', { qos: 2 })
 * trie.add('$share/workers/Dog/#', 'worker-1', { qos: 0 })
 * const { subscribers, shared } = trie.match('Dog/123')
 * // subscribers: [{ subscriber: 'client-a', qos: 2, subscriptionIds: [7], subscriptions: [...] }]
 * // shared: [{ group: 'workers', filter: 'Dog/#', members: [{ subscriber: 'worker-1', ... }] }]
 */
export class SubscriptionTrie<S, O = undefined> {
  readonly #root = new TrieNode<S, O>(undefined, '')
  readonly #states = new Map<S, SubscriberState<S, O>>()
  readonly #walk = new TrieWalk<S, O>(this.#root)
  #size = 0
  #scratch: Collector<S, O> | undefined = newCollector<S, O>([])

  /** Number of subscriptions (plain and shared). */
  get size(): number {
    return this.#size
  }

  /**
   * Adds a subscription, or replaces the options of the one `subscriber` has on `filter`.
   * Returns true when it is new, false when it replaced one.
   * @throws {TopicError} when `filter` is not a valid topic filter.
   */
  add(filter: string, subscriber: S, options: SubscriptionOptions<O>): boolean {
    assertTopicFilter(filter)
    let state = this.#states.get(subscriber)
    const existing = state?.byFilter.get(filter)
    if (state !== undefined && existing !== undefined) {
      // Swap in a new entry rather than mutating: results already handed out stay as they were.
      const { group, inner, node } = existing
      const entry = new Entry(filter, subscriber, options, group, inner, node, state)
      entry.pos = existing.pos
      entry.overlaps = existing.overlaps
      if (group === undefined) (existing.overlaps ? node.overlapping! : node.solo!)[entry.pos] = entry
      else node.shared!.get(group)!.members[entry.pos] = entry
      state.byFilter.set(filter, entry)
      return false
    }
    let group: string | undefined
    let inner = filter
    if (filter.startsWith(SHARE_PREFIX)) {
      const slash = filter.indexOf('/', SHARE_PREFIX.length)
      group = filter.slice(SHARE_PREFIX.length, slash)
      inner = filter.slice(slash + 1)
    }
    const node = nodeFor(this.#root, inner)
    if (state === undefined) {
      state = new SubscriberState(subscriber)
      this.#states.set(subscriber, state)
    }
    const entry = new Entry(filter, subscriber, options, group, inner, node, state)
    if (group === undefined) {
      this.#markOverlaps(state, entry)
      state.plainCount++
      insertPlain(entry)
    } else {
      node.shared ??= new Map()
      let g = node.shared.get(group)
      if (g === undefined) {
        g = new SharedGroup(group, inner)
        node.shared.set(group, g)
      }
      entry.pos = g.members.length
      g.members.push(entry)
    }
    state.byFilter.set(filter, entry)
    this.#size++
    return true
  }

  /** Removes `subscriber`'s subscription on `filter` (exactly as added); false if there was none. */
  remove(filter: string, subscriber: S): boolean {
    const state = this.#states.get(subscriber)
    const entry = state?.byFilter.get(filter)
    if (state === undefined || entry === undefined) return false
    this.#detach(entry)
    state.byFilter.delete(filter)
    if (state.byFilter.size === 0) this.#states.delete(subscriber)
    else if (entry.overlaps) this.#recomputeOverlaps(state)
    return true
  }

  /** Removes every subscription of `subscriber` (a session ending); returns how many there were. */
  removeSubscriber(subscriber: S): number {
    const state = this.#states.get(subscriber)
    if (state === undefined) return 0
    const count = state.byFilter.size
    for (const entry of state.byFilter.values()) this.#detach(entry)
    this.#states.delete(subscriber)
    return count
  }

  /** The subscription `subscriber` has on `filter`, if any. */
  get(filter: string, subscriber: S): Subscription<S, O> | undefined {
    return this.#states.get(subscriber)?.byFilter.get(filter)
  }

  /** Whether `subscriber` has a subscription on `filter`. */
  has(filter: string, subscriber: S): boolean {
    return this.get(filter, subscriber) !== undefined
  }

  /** All subscriptions of `subscriber`. */
  subscriptionsOf(subscriber: S): Subscription<S, O>[] {
    const state = this.#states.get(subscriber)
    return state === undefined ? [] : [...state.byFilter.values()]
  }

  /** Removes everything. */
  clear(): void {
    const root = this.#root
    root.children = root.plus = root.hash = undefined
    root.solo = root.overlapping = undefined
    root.shared = undefined
    this.#states.clear()
    this.#size = 0
  }

  /**
   * Every subscriber whose filters match `topic`, once each with its highest QoS and all its
   * Subscription Identifiers (MQTT 5.0 §3.3.4), plus the matching shared-subscription groups.
   * The result is the caller's to keep.
   */
  match(topic: string): TrieMatch<S, O> {
    const out = newCollector<S, O>(null)
    this.#walk.collect(topic, out)
    for (let i = 0; i < out.shared.length; i++) {
      const g = out.shared[i]!
      out.shared[i] = { group: g.group, filter: g.filter, members: g.members.slice() }
    }
    return { subscribers: out.subscribers, shared: out.shared }
  }

  /**
   * Allocation-free form of {@link match} for the broker's hot path: calls `onSubscriber` for each
   * matching subscriber and `onShared` for each matching group. The objects passed are reused by the
   * next call and valid only during the callback; copy what you keep. Returns the number of
   * subscribers plus groups.
   */
  forEachMatch(
    topic: string,
    onSubscriber: (match: SubscriberMatch<S, O>) => void,
    onShared?: (group: SharedGroupMatch<S, O>) => void,
  ): number {
    // A callback may call back into the trie: the scratch collector is lent out meanwhile.
    const out = this.#scratch ?? newCollector<S, O>([])
    this.#scratch = undefined
    try {
      this.#walk.collect(topic, out)
      const { count, sharedCount } = out
      for (let i = 0; i < count; i++) onSubscriber(out.subscribers[i]!)
      if (onShared !== undefined) for (let i = 0; i < sharedCount; i++) onShared(out.shared[i]!)
      return count + sharedCount
    } finally {
      // Drop references so that the scratch space does not keep removed subscribers alive.
      const pool = out.pool!
      for (let i = 0; i < out.poolUsed; i++) {
        const slot = pool[i]!
        slot.subscriber = undefined as S
        slot.subscriptions.length = 0
      }
      clearScratch(out.subscribers, out.count)
      clearScratch(out.shared, out.sharedCount)
      out.count = out.sharedCount = out.poolUsed = 0
      this.#scratch = out
    }
  }

  /** Whether any subscription (plain or shared) matches `topic`. */
  hasMatch(topic: string): boolean {
    return this.forEachMatch(topic, noop, noop) > 0
  }

  #markOverlaps(state: SubscriberState<S, O>, entry: Entry<S, O>): void {
    if (state.plainCount === 0) return
    if (state.plainCount >= OVERLAP_CHECK_LIMIT) {
      entry.overlaps = true
      if (state.plainCount === OVERLAP_CHECK_LIMIT)
        for (const other of state.byFilter.values()) setOverlaps(other, true)
      return
    }
    for (const other of state.byFilter.values()) {
      if (other.group === undefined && filtersOverlap(other.inner, entry.inner)) {
        setOverlaps(other, true)
        entry.overlaps = true
      }
    }
  }

  #recomputeOverlaps(state: SubscriberState<S, O>): void {
    if (state.plainCount >= OVERLAP_CHECK_LIMIT) return
    const plain = [...state.byFilter.values()].filter((e) => e.group === undefined)
    for (const e of plain) {
      let overlaps = false
      for (const other of plain) if (other !== e && filtersOverlap(e.inner, other.inner)) overlaps = true
      setOverlaps(e, overlaps)
    }
  }

  #detach(entry: Entry<S, O>): void {
    const node = entry.node
    if (entry.group === undefined) {
      entry.state.plainCount--
      removePlain(entry)
    } else {
      const g = node.shared!.get(entry.group)!
      swapRemove(g.members, entry.pos)
      if (g.members.length === 0) {
        node.shared!.delete(entry.group)
        if (node.shared!.size === 0) node.shared = undefined
      }
    }
    this.#size--
    prune(node)
  }
}

function noop(): void {}

/**
 * Factory form of `new SubscriptionTrie()`.
 * @example
 * const trie = createSubscriptionTrie<Client, { noLocal: boolean }>()
 */
export function createSubscriptionTrie<S, O = undefined>(): SubscriptionTrie<S, O> {
  return new SubscriptionTrie<S, O>()
}

/** Above this many entries a scratch array is let go of rather than kept for the next match. */
const SCRATCH_KEEP = 1024

/**
 * Drops the references of one match but keeps the array's backing store: truncating it (`length = 0`)
 * made every match grow it again, an allocation per published message. A loop, not `fill`: for the one or
 * two slots a match uses, the builtin call cost more than the stores (about 2 % of S6's busy time).
 */
function clearScratch(list: unknown[], used: number): void {
  if (list.length > SCRATCH_KEEP) list.length = 0
  else for (let i = 0; i < used; i++) list[i] = undefined
}
