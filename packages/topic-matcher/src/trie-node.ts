import type {
  QoS,
  SharedGroupMatch,
  SubscriberMatch,
  Subscription,
  SubscriptionOptions,
} from './subscription-types.js'

// The trie's stored objects: a node per filter level, an entry per subscription, and per subscriber the
// state that deduplicates its matches. Only subscription-trie.ts and trie-match.ts use them.

/**
 * One stored subscription. Immutable once made (re-subscribing swaps in a new Entry), so it doubles
 * as the {@link SubscriberMatch} of a subscriber reached through this subscription only: the
 * common case of a match then allocates nothing per subscriber.
 */
export class Entry<S, O> implements Subscription<S, O>, SubscriberMatch<S, O> {
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
export class MatchSlot<S, O> implements SubscriberMatch<S, O> {
  constructor(
    public subscriber: S,
    public qos: QoS,
    public subscriptionIds: number[],
    public subscriptions: Subscription<S, O>[],
  ) {}
}

export class SharedGroup<S, O> implements SharedGroupMatch<S, O> {
  readonly members: Entry<S, O>[] = []
  constructor(
    readonly group: string,
    readonly filter: string,
  ) {}
}

export class SubscriberState<S, O> {
  /** Match generation that last saw this subscriber, and its slot in that match's results. */
  gen = 0
  slot = 0
  plainCount = 0
  readonly byFilter = new Map<string, Entry<S, O>>()
  constructor(readonly subscriber: S) {}
}

export class TrieNode<S, O> {
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

/** The node of `filter` (without a `$share/` prefix) under `root`, made as needed. */
export function nodeFor<S, O>(root: TrieNode<S, O>, filter: string): TrieNode<S, O> {
  let node = root
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

/** Unlinks `node` and then each ancestor left empty (the root stays). */
export function prune<S, O>(node: TrieNode<S, O>): void {
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

export function insertPlain<S, O>(entry: Entry<S, O>): void {
  const node = entry.node
  const list = entry.overlaps ? (node.overlapping ??= []) : (node.solo ??= [])
  entry.pos = list.length
  list.push(entry)
}

export function removePlain<S, O>(entry: Entry<S, O>): void {
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
export function setOverlaps<S, O>(entry: Entry<S, O>, overlaps: boolean): void {
  if (entry.overlaps === overlaps || entry.group !== undefined) return
  removePlain(entry)
  entry.overlaps = overlaps
  insertPlain(entry)
}

export function swapRemove<S, O>(list: Entry<S, O>[], pos: number): void {
  const last = list.pop()!
  if (pos < list.length) {
    list[pos] = last
    last.pos = pos
  }
}
