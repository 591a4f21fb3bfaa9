import { type SharedGroupMatch, type SubscriberMatch, SubscriptionTrie } from '@proj/topic-matcher'
import type { RuntimeEvent } from './event.js'
import type { IssuedBefore } from './issued-before.js'
import type { Delivery, EventListener, Subscription } from './types.js'

/**
 * A shared subscription (`$share/{group}/{filter}`) spread over several runtimes: each event goes to
 * one member of the group across all of them. Unset: this runtime's members are the whole group.
 */
export interface SharedDelivery {
  /**
   * This runtime's first member of `group` on `filter` came (`true`), or its last one left (`false`).
   * A promise: the members' subscriptions are acknowledged once it settles (the group knows them then).
   */
  members(group: string, filter: string, present: boolean): Promise<void> | undefined
  /** Whether this runtime delivers `event` to one of its members (false: another runtime's turn). */
  delivers(group: string, filter: string, event: RuntimeEvent): boolean
}

/** Per-listener state, to merge overlapping subscriptions of one listener into one delivery. */
interface Owner {
  listener: EventListener
  seq: number
  first: SubscriptionImpl | null
  merged: { qos: 0 | 1 | 2; subscriptionIds: number[]; retainAsPublished: boolean } | null
  count: number
}

const NO_IDS: number[] = Object.freeze([]) as unknown as number[]

/** One runtime.subscribe() call. */
export class SubscriptionImpl implements Subscription {
  readonly filter: string
  /** The filter as registered in the trie (canonical export path, no `$share/` prefix). */
  readonly trieFilter: string
  readonly owner: Owner
  readonly clientId: string | undefined
  readonly noLocal: boolean
  readonly qos: 0 | 1 | 2
  readonly subscriptionId: number | undefined
  readonly delivery: Delivery
  /** Change-log cursor when subscribed. */
  cursor = 0
  /** Live events at or below this cursor were already delivered by the replay. */
  minCursor = 0
  /** Resumed after another node's cursor (`ack: local`): its events it had delivered are left out. */
  issued: IssuedBefore | null = null
  /** State changes at or below this cursor are already in the retained snapshot (buffered or live). */
  snapshotCursor = 0
  /** Buffered live events while initial (retained / replayed) events are delivered; null when live. */
  pending: RuntimeEvent[] | null = null
  /** Per-event permission check, when the subscribe-time check could not decide for every topic. */
  check: ((event: RuntimeEvent) => boolean) | null
  closed = false
  /** ShareName of a `$share/{group}/` subscription. */
  group: string | undefined = undefined
  /** Shared subscriptions: false while this member cannot take another event (its turn passes on). */
  readonly canDeliver: (() => boolean) | null
  /** Resolves once the initial events were delivered and the subscription is live. */
  ready: Promise<void> = Promise.resolve()
  readonly #registry: SubscriptionRegistry

  constructor(
    registry: SubscriptionRegistry,
    owner: Owner,
    filter: string,
    trieFilter: string,
    options: {
      qos: 0 | 1 | 2
      subscriptionId?: number
      noLocal: boolean
      retainAsPublished: boolean
      clientId?: string
      canDeliver?: () => boolean
    },
    check: ((event: RuntimeEvent) => boolean) | null,
  ) {
    this.#registry = registry
    this.owner = owner
    this.filter = filter
    this.trieFilter = trieFilter
    this.qos = options.qos
    this.subscriptionId = options.subscriptionId
    this.noLocal = options.noLocal
    this.clientId = options.clientId
    this.check = check
    this.canDeliver = options.canDeliver ?? null
    this.delivery = Object.freeze({
      qos: options.qos,
      subscriptionIds:
        options.subscriptionId !== undefined ? (Object.freeze([options.subscriptionId]) as number[]) : NO_IDS,
      retainAsPublished: options.retainAsPublished,
    })
  }

  /** Whether a live event passes this subscription's filters (no local, replay overlap, permission). */
  accepts(event: RuntimeEvent): boolean {
    if (this.closed) return false
    const cursor = event.cursor
    if (cursor !== 0 && cursor <= this.minCursor) return false
    if (this.issued !== null && cursor !== 0 && this.#issuedBefore(cursor)) return false
    // A change the snapshot already held (committed, dispatched only after its sync): not sent again.
    if (cursor !== 0 && cursor <= this.snapshotCursor && event.type !== 'message') return false
    if (this.noLocal && this.clientId !== undefined && eventClientId(event) === this.clientId) return false
    if (this.check !== null && !this.check(event)) return false
    return true
  }

  #issuedBefore(cursor: number): boolean {
    const issued = this.issued!
    const delivered = issued.delivered(cursor)
    if (issued.passed) this.issued = null
    return delivered
  }

  /** Delivers one event to the listener (initial events bypass the pending buffer). */
  deliver(event: RuntimeEvent): void {
    this.#registry.call(this.owner.listener, event, this.delivery)
  }

  /** Goes live: delivers what was buffered during the initial delivery. */
  flush(): void {
    const pending = this.pending
    this.pending = null
    if (!pending) return
    for (const event of pending) {
      const cursor = event.cursor
      if (this.closed) return
      if (
        cursor !== 0 &&
        (cursor <= this.minCursor || (event.type !== 'message' && cursor <= this.snapshotCursor))
      )
        continue
      this.deliver(event)
    }
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.pending = null
    this.#registry.remove(this)
  }
}

/** The filter a subscription is registered under in the trie: add and remove must agree on it. */
function trieKey(subscription: SubscriptionImpl): string {
  return subscription.group === undefined
    ? subscription.trieFilter
    : `$share/${subscription.group}/${subscription.trieFilter}`
}

function shareKey(group: string, filter: string): string {
  return `${group}\0${filter}`
}

function eventClientId(event: RuntimeEvent): string | undefined {
  const metaClient = event.meta?.clientId
  return typeof metaClient === 'string' ? metaClient : event.origin
}

/**
 * Every live subscription of a runtime in one trie. A dispatch matches the event's topic once and
 * calls each listener once: overlapping subscriptions of one listener are merged into one delivery
 * (highest QoS, every subscription id; MQTT 5 section 3.3.4). Shared subscriptions deliver each event
 * to one member of the group, round robin.
 */
export class SubscriptionRegistry {
  /** One trie entry per subscribe() call (its SubscriptionImpl); merging per listener happens here. */
  readonly #trie = new SubscriptionTrie<SubscriptionImpl>()
  readonly #owners = new Map<EventListener, Owner>()
  /** Per shared group and filter: its member count, and whose turn is next. Dropped with its last member. */
  readonly #shareGroups = new Map<
    string,
    { members: number; next: number; joined: Promise<void> | undefined }
  >()
  readonly #onError: (error: unknown, event: RuntimeEvent) => void
  #seq = 0
  #size = 0
  /** Matches collected for the dispatch in progress; listeners run after collection, so this is not re-entered. */
  #collected: SubscriptionImpl[] = []
  #count = 0
  #event: RuntimeEvent | undefined
  /**
   * One collection array per dispatch depth (a listener that publishes re-enters dispatch one level
   * deeper), kept for good: taking a spare from a list and putting it back (`pop`/`push`) trimmed and
   * regrew that list's backing store on every event.
   */
  readonly #levels: SubscriptionImpl[][] = []
  #depth = 0
  readonly #onSubscriber = (match: SubscriberMatch<SubscriptionImpl>): void => {
    this.#collected[this.#count++] = match.subscriber
  }
  readonly #onShared = (group: SharedGroupMatch<SubscriptionImpl>): void => {
    // another runtime's turn (a cluster): none of the members here gets this event
    if (this.#shared !== undefined && !this.#shared.delivers(group.group, group.filter, this.#event!)) return
    const members = group.members
    const n = members.length
    const turn = this.#shareGroups.get(shareKey(group.group, group.filter))
    const next = turn === undefined ? 0 : turn.next % n
    let fallback = -1
    for (let i = 0; i < n; i++) {
      const member = members[(next + i) % n]!.subscriber
      if (!member.accepts(this.#event!)) continue
      if (member.canDeliver !== null && !member.canDeliver()) {
        // Full (e.g. its in-flight window): try the next member, keep this one in case all are full.
        if (fallback === -1) fallback = i
        continue
      }
      if (turn !== undefined) turn.next = (next + i + 1) % n
      this.#collected[this.#count++] = member
      return
    }
    if (fallback !== -1) {
      if (turn !== undefined) turn.next = (next + fallback + 1) % n
      this.#collected[this.#count++] = members[(next + fallback) % n]!.subscriber
    }
  }

  readonly #shared: SharedDelivery | undefined

  constructor(onError: (error: unknown, event: RuntimeEvent) => void, shared?: SharedDelivery) {
    this.#onError = onError
    this.#shared = shared
  }

  get size(): number {
    return this.#size
  }

  owner(listener: EventListener): Owner {
    let owner = this.#owners.get(listener)
    if (!owner) {
      owner = { listener, seq: 0, first: null, merged: null, count: 0 }
      this.#owners.set(listener, owner)
    }
    return owner
  }

  /**
   * Registers `subscription`. For a shared one, returns what its acknowledgement waits for: the group
   * (across runtimes) knowing this runtime's members (undefined: nothing to wait for).
   */
  add(subscription: SubscriptionImpl): Promise<void> | undefined {
    subscription.owner.count++
    this.#size++
    let joined: Promise<void> | undefined
    if (subscription.group !== undefined) {
      const key = shareKey(subscription.group, subscription.trieFilter)
      const turn = this.#shareGroups.get(key)
      if (turn === undefined) {
        joined = this.#tellShared(subscription, true)
        this.#shareGroups.set(key, { members: 1, next: 0, joined })
      } else {
        turn.members++
        joined = turn.joined
      }
    }
    this.#trie.add(trieKey(subscription), subscription, {
      qos: subscription.qos,
      ...(subscription.subscriptionId !== undefined ? { subscriptionId: subscription.subscriptionId } : {}),
    })
    return joined
  }

  remove(subscription: SubscriptionImpl): void {
    const owner = subscription.owner
    this.#size--
    if (--owner.count === 0 && this.#owners.get(owner.listener) === owner) this.#owners.delete(owner.listener)
    this.#trie.remove(trieKey(subscription), subscription)
    if (subscription.group !== undefined) {
      const key = shareKey(subscription.group, subscription.trieFilter)
      const turn = this.#shareGroups.get(key)
      if (turn !== undefined && --turn.members === 0) {
        this.#shareGroups.delete(key)
        this.#tellShared(subscription, false)
      }
    }
  }

  #tellShared(subscription: SubscriptionImpl, present: boolean): Promise<void> | undefined {
    if (this.#shared === undefined) return undefined
    try {
      // never rejects: a failure is the shared delivery's to report (the subscription stands)
      return this.#shared
        .members(subscription.group!, subscription.trieFilter, present)
        ?.catch((error: unknown) => this.#onError(error, undefined as unknown as RuntimeEvent))
    } catch (error) {
      this.#onError(error, undefined as unknown as RuntimeEvent)
      return undefined
    }
  }

  /** Shared groups with at least one member (diagnostics and tests). */
  get sharedGroupCount(): number {
    return this.#shareGroups.size
  }

  call(listener: EventListener, event: RuntimeEvent, delivery: Delivery): void {
    try {
      listener(event, delivery)
    } catch (error) {
      this.#onError(error, event)
    }
  }

  /** Delivers a live event to every matching subscription. */
  dispatch(event: RuntimeEvent): void {
    if (this.#size === 0) return
    // Collect first, deliver after: a listener may publish, which re-enters dispatch.
    const depth = this.#depth
    const collected = (this.#levels[depth] ??= [])
    this.#collected = collected
    this.#count = 0
    this.#event = event
    this.#trie.forEachMatch(event.topic, this.#onSubscriber, this.#onShared)
    const n = this.#count
    this.#event = undefined
    if (n === 0) return
    this.#depth = depth + 1
    try {
      this.#deliver(event, collected, n)
    } finally {
      this.#depth = depth
      for (let i = 0; i < n; i++) collected[i] = undefined as unknown as SubscriptionImpl
    }
  }

  #deliver(event: RuntimeEvent, collected: SubscriptionImpl[], n: number): void {
    let single: SubscriptionImpl | undefined
    let owners: Owner[] | undefined
    let seq = 0
    for (let i = 0; i < n; i++) {
      const subscription = collected[i]!
      if (subscription.group === undefined && !subscription.accepts(event)) continue
      if (subscription.pending !== null) {
        subscription.pending.push(event)
        continue
      }
      const owner = subscription.owner
      if (owner.count === 1) {
        // The listener's only subscription: nothing to merge it with (a fan-out to 100 sessions built a
        // list of 100 owners per event for this).
        this.call(owner.listener, event, subscription.delivery)
        continue
      }
      if (single === undefined) {
        single = subscription
        continue
      }
      // A second accepted subscription: merge per listener from here on.
      if (owners === undefined) {
        seq = ++this.#seq
        owners = []
        this.#join(single.owner, single, seq, owners)
      }
      this.#join(subscription.owner, subscription, seq, owners)
    }
    if (single === undefined) return
    if (owners === undefined) {
      this.call(single.owner.listener, event, single.delivery)
      return
    }
    for (const owner of owners) {
      const merged = owner.merged
      const first = owner.first!
      owner.first = null
      owner.merged = null
      this.call(owner.listener, event, merged ?? first.delivery)
    }
  }

  #join(owner: Owner, subscription: SubscriptionImpl, seq: number, owners: Owner[]): void {
    if (owner.seq !== seq) {
      owner.seq = seq
      owner.first = subscription
      owner.merged = null
      owners.push(owner)
      return
    }
    const merged = (owner.merged ??= {
      qos: owner.first!.qos,
      subscriptionIds: [...owner.first!.delivery.subscriptionIds],
      retainAsPublished: owner.first!.delivery.retainAsPublished,
    })
    if (subscription.qos > merged.qos) merged.qos = subscription.qos
    for (const id of subscription.delivery.subscriptionIds) merged.subscriptionIds.push(id)
    merged.retainAsPublished ||= subscription.delivery.retainAsPublished
  }
}
