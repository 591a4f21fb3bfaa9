import { filtersOverlap } from './filter-relations.js'
import { assertTopicFilter, SHARE_PREFIX } from './validate.js'

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

/**
 * One stored subscription. Immutable once made (re-subscribing swaps in a new Entry), so it doubles
 * as the {@link SubscriberMatch} of a subscriber reached through this subscription only: the
 * common case of a match then allocates nothing per subscriber.
 */
class Entry<S, O> implements Subscription<S, O>, SubscriberMatch<S, O> {
  /** Index in the owning array (node.solo, node.overlapping or group members), for O(1) removal. */
  pos = -1
  /**
   * Whether another plain subscription of the same subscriber may match a topic this one matches;
   * such entries live in node.overlapping and pay for deduplication during a match, the others in
   * node.solo are copied to the result without even being read. Conservative: may be true needlessly.
   */
  overlaps = false
  readonly qos: QoS
  readonly subscriptionId: number | undefined
  readonly data: O | undefined
  readonly subscriptionIds: readonly number[]
  #self: readonly Subscription<S, O>[] | undefined = undefined
  constructor(
    readonly filter: string,
    readonly subscriber: S,
    options: SubscriptionOptions<O>,
    readonly group: string | undefined,
    /** `filter` without its `$share/{group}/` prefix. */
    readonly inner: string,
    readonly node: TrieNode<S, O>,
    readonly state: SubscriberState<S, O>,
  ) {
    const { qos, subscriptionId, data } = options
    this.qos = qos
    this.subscriptionId = subscriptionId
    this.data = data
    this.subscriptionIds = subscriptionId === undefined ? NO_IDS : Object.freeze([subscriptionId])
  }
  /** Made on first read: most stored subscriptions never need their one-element list. */
  get subscriptions(): readonly Subscription<S, O>[] {
    this.#self ??= Object.freeze([this])
    return this.#self
  }

  /** The public fields only (the trie links would make JSON.stringify fail on a cycle). */
  toJSON(): Record<string, unknown> {
    const { filter, subscriber, qos, subscriptionId, subscriptionIds, data, group } = this
    return { filter, subscriber, qos, subscriptionId, subscriptionIds, data, group }
  }

  [Symbol.for('nodejs.util.inspect.custom')](): Record<string, unknown> {
    return this.toJSON()
  }
}

const NO_IDS: readonly number[] = Object.freeze([])

/** A subscriber reached through several overlapping subscriptions: lists are merged here. */
class MatchSlot<S, O> implements SubscriberMatch<S, O> {
  constructor(
    public subscriber: S,
    public qos: QoS,
    public subscriptionIds: number[],
    public subscriptions: Subscription<S, O>[],
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
  plainCount = 0
  readonly byFilter = new Map<string, Entry<S, O>>()
  constructor(readonly subscriber: S) {}
}

class TrieNode<S, O> {
  children: Map<string, TrieNode<S, O>> | undefined = undefined
  /** The `+` child. */
  plus: TrieNode<S, O> | undefined = undefined
  /** The `#` child: its subscriptions match this level and everything below it. */
  hash: TrieNode<S, O> | undefined = undefined
  /** Plain subscriptions ending here whose subscriber has no other overlapping subscription. */
  solo: Entry<S, O>[] | undefined = undefined
  /** Plain subscriptions ending here that need deduplication per subscriber. */
  overlapping: Entry<S, O>[] | undefined = undefined
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
      this.solo === undefined &&
      this.overlapping === undefined &&
      this.shared === undefined
    )
  }
}

/** Collects one match: plain subscriber results (deduplicated) and shared groups. */
interface Collector<S, O> {
  subscribers: SubscriberMatch<S, O>[]
  count: number
  shared: SharedGroupMatch<S, O>[]
  sharedCount: number
  /** MatchSlots kept for reuse by forEachMatch; null for match(), whose results are the caller's. */
  pool: MatchSlot<S, O>[] | null
  poolUsed: number
}

const newCollector = <S, O>(pool: MatchSlot<S, O>[] | null): Collector<S, O> => ({
  subscribers: [],
  count: 0,
  shared: [],
  sharedCount: 0,
  pool,
  poolUsed: 0,
})

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
  #size = 0
  #gen = 0
  /** Topic levels of the current match, reused between calls. */
  readonly #levels: string[] = []
  #levelCount = 0
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
    const node = this.#nodeFor(inner)
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
    const out = this.#scratch ?? newCollector<S, O>([])
    this.#scratch = undefined
    try {
      this.#collect(topic, out)
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
      out.subscribers.length = 0
      out.shared.length = 0
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

function insertPlain<S, O>(entry: Entry<S, O>): void {
  const node = entry.node
  const list = entry.overlaps ? (node.overlapping ??= []) : (node.solo ??= [])
  entry.pos = list.length
  list.push(entry)
}

function removePlain<S, O>(entry: Entry<S, O>): void {
  const node = entry.node
  if (entry.overlaps) {
    swapRemove(node.overlapping!, entry.pos)
    if (node.overlapping!.length === 0) node.overlapping = undefined
  } else {
    swapRemove(node.solo!, entry.pos)
    if (node.solo!.length === 0) node.solo = undefined
  }
}

/** Moves a stored plain entry between its node's solo and overlapping lists. */
function setOverlaps<S, O>(entry: Entry<S, O>, overlaps: boolean): void {
  if (entry.overlaps === overlaps || entry.group !== undefined) return
  removePlain(entry)
  entry.overlaps = overlaps
  insertPlain(entry)
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
