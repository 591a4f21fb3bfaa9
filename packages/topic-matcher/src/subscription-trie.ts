import { TopicError } from './errors.js'
import { validateTopicFilter } from './validate.js'

/** MQTT quality of service. */
export type QoS = 0 | 1 | 2

/** Options of one subscription, as given to {@link SubscriptionTrie.add}. */
export interface SubscriptionOptions<O = undefined> {
  qos: QoS
  /** MQTT 5 Subscription Identifier (1..268,435,455). */
  subscriptionId?: number
  /** Anything else the caller keeps per subscription (no-local, retain-as-published, ...). */
  data?: O
}

/** One stored subscription. Objects are owned by the trie: read them, do not mutate them. */
export interface Subscription<S, O = undefined> {
  /** The filter as given to `add` (with its `$share/{group}/` prefix for a shared subscription). */
  readonly filter: string
  readonly subscriber: S
  readonly qos: QoS
  readonly subscriptionId: number | undefined
  readonly data: O | undefined
  /** ShareName of a shared subscription, else undefined. */
  readonly group: string | undefined
}

/** One subscriber that a topic reaches through one or more of its (non-shared) subscriptions. */
export interface SubscriberMatch<S, O = undefined> {
  subscriber: S
  /** Highest QoS of the matching subscriptions [MQTT-3.3.4-2]. */
  qos: QoS
  /** Subscription Identifiers of all matching subscriptions that have one [MQTT-3.3.4-4]. */
  subscriptionIds: readonly number[]
  /** Every matching subscription of this subscriber (for per-subscription options in `data`). */
  subscriptions: readonly Subscription<S, O>[]
}

/** The mutable shape behind {@link SubscriberMatch}. */
interface MatchSlot<S, O> {
  subscriber: S
  qos: QoS
  subscriptionIds: number[]
  subscriptions: Subscription<S, O>[]
}

/** A shared-subscription group the topic reaches: the caller delivers to one of `members`. */
export interface SharedGroupMatch<S, O = undefined> {
  group: string
  /** The filter after `$share/{group}/`. */
  filter: string
  members: readonly Subscription<S, O>[]
}

/** Result of {@link SubscriptionTrie.match}. */
export interface TrieMatch<S, O = undefined> {
  /** Each subscriber once, in no particular order. */
  subscribers: SubscriberMatch<S, O>[]
  /** Each matching (group, filter) once; empty when there are no shared subscriptions. */
  shared: SharedGroupMatch<S, O>[]
}

class Entry<S, O> implements Subscription<S, O> {
  /** Index in the owning array (node entries or group members), for O(1) removal. */
  pos = -1
  constructor(
    readonly filter: string,
    readonly subscriber: S,
    public qos: QoS,
    public subscriptionId: number | undefined,
    public data: O | undefined,
    readonly group: string | undefined,
    readonly node: TrieNode<S, O>,
    readonly state: SubscriberState<S, O>,
  ) {}
}

class SharedGroup<S, O> implements SharedGroupMatch<S, O> {
  readonly members: Entry<S, O>[] = []
  constructor(
    readonly group: string,
    readonly filter: string,
  ) {}
}

class SubscriberState<S, O> {
  /** Match generation that last saw this subscriber, and its slot in that match's results. */
  gen = 0
  slot = 0
  readonly byFilter = new Map<string, Entry<S, O>>()
  constructor(readonly subscriber: S) {}
}

class TrieNode<S, O> {
  children: Map<string, TrieNode<S, O>> | undefined = undefined
  /** The `+` child. */
  plus: TrieNode<S, O> | undefined = undefined
  /** The `#` child: its subscriptions match this level and everything below it. */
  hash: TrieNode<S, O> | undefined = undefined
  entries: Entry<S, O>[] | undefined = undefined
  shared: Map<string, SharedGroup<S, O>> | undefined = undefined
  constructor(
    readonly parent: TrieNode<S, O> | undefined,
    readonly key: string,
  ) {}

  isEmpty(): boolean {
    return (
      this.children === undefined &&
      this.plus === undefined &&
      this.hash === undefined &&
      this.entries === undefined &&
      this.shared === undefined
    )
  }
}

/** Collects one match: plain subscriber results (deduplicated) and shared groups. */
interface Collector<S, O> {
  subscribers: MatchSlot<S, O>[]
  count: number
  shared: SharedGroupMatch<S, O>[]
  sharedCount: number
  /** Reuse the objects already in the arrays (forEachMatch) instead of allocating (match). */
  reuse: boolean
}

// Shared by every match without identifiers; only ever exposed as a readonly array.
const NO_IDS = Object.freeze([]) as unknown as number[]
const SHARE_PREFIX = '$share/'

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
  #size = 0
  #gen = 0
  /** Topic levels of the current match, reused between calls. */
  readonly #levels: string[] = []
  #levelCount = 0
  #scratch: Collector<S, O> | undefined = {
    subscribers: [],
    count: 0,
    shared: [],
    sharedCount: 0,
    reuse: true,
  }

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
    const valid = validateTopicFilter(filter)
    if (!valid.ok)
      throw new TopicError(
        valid.code,
        filter,
        `invalid topic filter ${JSON.stringify(filter)}: ${valid.reason}`,
      )
    let state = this.#states.get(subscriber)
    const existing = state?.byFilter.get(filter)
    if (existing !== undefined) {
      existing.qos = options.qos
      existing.subscriptionId = options.subscriptionId
      existing.data = options.data
      return false
    }
    let group: string | undefined
    let inner = filter
    if (filter.startsWith(SHARE_PREFIX)) {
      const slash = filter.indexOf('/', SHARE_PREFIX.length)
      group = filter.slice(SHARE_PREFIX.length, slash)
      inner = filter.slice(slash + 1)
    }
    const node = this.#nodeFor(inner)
    if (state === undefined) {
      state = new SubscriberState(subscriber)
      this.#states.set(subscriber, state)
    }
    const entry = new Entry(
      filter,
      subscriber,
      options.qos,
      options.subscriptionId,
      options.data,
      group,
      node,
      state,
    )
    state.byFilter.set(filter, entry)
    if (group === undefined) {
      node.entries ??= []
      entry.pos = node.entries.length
      node.entries.push(entry)
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
    root.entries = undefined
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
    const out: Collector<S, O> = { subscribers: [], count: 0, shared: [], sharedCount: 0, reuse: false }
    this.#collect(topic, out)
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
    const out = this.#scratch ?? { subscribers: [], count: 0, shared: [], sharedCount: 0, reuse: true }
    this.#scratch = undefined
    try {
      out.count = 0
      out.sharedCount = 0
      this.#collect(topic, out)
      const { count, sharedCount } = out
      for (let i = 0; i < count; i++) onSubscriber(out.subscribers[i]!)
      if (onShared !== undefined) for (let i = 0; i < sharedCount; i++) onShared(out.shared[i]!)
      return count + sharedCount
    } finally {
      for (let i = 0; i < out.count; i++) {
        const m = out.subscribers[i]!
        m.subscriber = undefined as S
        m.subscriptions.length = 0
      }
      this.#scratch = out
    }
  }

  /** Whether any subscription (plain or shared) matches `topic`. */
  hasMatch(topic: string): boolean {
    return this.forEachMatch(topic, noop, noop) > 0
  }

  #collect(topic: string, out: Collector<S, O>): void {
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
    this.#gen++
    const dollar = topic.charCodeAt(0) === 36
    this.#visit(this.#root, 0, dollar, out)
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
    const entries = node.entries
    if (entries !== undefined) {
      const gen = this.#gen
      for (let e = 0; e < entries.length; e++) {
        const entry = entries[e]!
        const state = entry.state
        if (state.gen !== gen) {
          state.gen = gen
          state.slot = out.count
          const id = entry.subscriptionId
          let m = out.reuse ? out.subscribers[out.count] : undefined
          if (m === undefined) {
            m = {
              subscriber: entry.subscriber,
              qos: entry.qos,
              subscriptionIds: id === undefined ? NO_IDS : [id],
              subscriptions: [entry],
            }
            out.subscribers[out.count] = m
          } else {
            m.subscriber = entry.subscriber
            m.qos = entry.qos
            if (id === undefined) m.subscriptionIds = NO_IDS
            else if (m.subscriptionIds === NO_IDS) m.subscriptionIds = [id]
            else {
              m.subscriptionIds.length = 0
              m.subscriptionIds.push(id)
            }
            m.subscriptions.push(entry)
          }
          out.count++
        } else {
          // The same subscriber through another of its filters [MQTT-3.3.4-2] [MQTT-3.3.4-4].
          const m = out.subscribers[state.slot]!
          if (entry.qos > m.qos) m.qos = entry.qos
          const id = entry.subscriptionId
          if (id !== undefined) {
            if (m.subscriptionIds === NO_IDS) m.subscriptionIds = [id]
            else m.subscriptionIds.push(id)
          }
          m.subscriptions.push(entry)
        }
      }
    }
    const shared = node.shared
    if (shared !== undefined) {
      for (const g of shared.values()) out.shared[out.sharedCount++] = g
    }
  }

  #nodeFor(filter: string): TrieNode<S, O> {
    let node = this.#root
    let start = 0
    for (;;) {
      const slash = filter.indexOf('/', start)
      const level = slash === -1 ? filter.slice(start) : filter.slice(start, slash)
      if (level === '+') node = node.plus ??= new TrieNode(node, level)
      else if (level === '#') node = node.hash ??= new TrieNode(node, level)
      else {
        node.children ??= new Map()
        let child = node.children.get(level)
        if (child === undefined) {
          child = new TrieNode(node, level)
          node.children.set(level, child)
        }
        node = child
      }
      if (slash === -1) return node
      start = slash + 1
    }
  }

  #detach(entry: Entry<S, O>): void {
    const node = entry.node
    if (entry.group === undefined) {
      const entries = node.entries!
      swapRemove(entries, entry.pos)
      if (entries.length === 0) node.entries = undefined
    } else {
      const g = node.shared!.get(entry.group)!
      swapRemove(g.members, entry.pos)
      if (g.members.length === 0) {
        node.shared!.delete(entry.group)
        if (node.shared!.size === 0) node.shared = undefined
      }
    }
    this.#size--
    this.#prune(node)
  }

  #prune(node: TrieNode<S, O>): void {
    while (node.parent !== undefined && node.isEmpty()) {
      const parent = node.parent
      if (parent.plus === node) parent.plus = undefined
      else if (parent.hash === node) parent.hash = undefined
      else {
        parent.children!.delete(node.key)
        if (parent.children!.size === 0) parent.children = undefined
      }
      node = parent
    }
  }
}

function swapRemove<S, O>(list: Entry<S, O>[], pos: number): void {
  const last = list.pop()!
  if (pos < list.length) {
    list[pos] = last
    last.pos = pos
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
