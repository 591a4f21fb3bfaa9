/**
 * One subscription to a query, and the subscriptions to queries on one table grouped by their
 * conditions (a change is matched once per distinct query, then offered to each member).
 */
import type { BoundFilter } from '@proj/query'
import { QuerySubscriptionIndex } from '@proj/query'
import type { ChangeEvent, Store } from '@proj/storage'
import type { RuntimeEvent } from './event.js'
import { projected } from './query-events.js'
import type { Table } from './table.js'
import type { Delivery, EventListener, RequestContext, SubscribeOptions } from './types.js'

/** What the query subscriptions need of the runtime. */
export interface QueryHost {
  readonly store: Store
  /** True once the runtime is closed (a pending snapshot then does nothing). */
  closed(): boolean
  /** The RuntimeEvent of a logged change (shared with topic subscribers). */
  toEvent(change: ChangeEvent): RuntimeEvent | null
  onError(error: unknown): void
}

const NO_IDS: number[] = Object.freeze([]) as unknown as number[]

/** One subscription to a query. */
export class QuerySubscription {
  readonly filter: string
  readonly table: TableQueries
  readonly listener: EventListener
  readonly delivery: Delivery
  readonly noLocal: boolean
  readonly clientId: string | undefined
  readonly matches: (value: unknown) => boolean
  /** `select()`, applied to each value delivered; `selectKey` shares projections between subscribers. */
  readonly project: ((value: unknown) => unknown) | undefined
  readonly selectKey: string
  /** Its group in the table's index, and its place among the group's members. */
  group: QueryGroup | undefined = undefined
  slot = 0
  cursor = 0
  minCursor = 0
  snapshotCursor = 0
  /** Live events buffered while the snapshot or replay is delivered; null when live. */
  pending: RuntimeEvent[] | null = null
  ready: Promise<void> = Promise.resolve()
  closed = false

  constructor(
    filter: string,
    table: TableQueries,
    listener: EventListener,
    options: SubscribeOptions,
    ctx: RequestContext,
    matches: (value: unknown) => boolean,
    project: ((value: unknown) => unknown) | undefined,
    selectKey: string,
  ) {
    this.filter = filter
    this.table = table
    this.listener = listener
    this.noLocal = options.noLocal === true
    this.clientId = ctx.clientId
    this.matches = matches
    this.project = project
    this.selectKey = selectKey
    this.delivery = Object.freeze({
      qos: options.qos ?? 0,
      subscriptionIds:
        options.subscriptionId !== undefined ? (Object.freeze([options.subscriptionId]) as number[]) : NO_IDS,
      retainAsPublished: options.retainAsPublished === true,
    })
  }

  /**
   * Nothing to check before handing it an event: live, no `noLocal`, no `select()`, no replayed
   * cursor to skip up to. Its group then calls the listener straight from parallel arrays, without
   * reading this object (one object fewer per event, most of the cost when thousands are scattered in
   * a large heap).
   */
  get plain(): boolean {
    return (
      !this.closed &&
      !this.noLocal &&
      this.project === undefined &&
      this.pending === null &&
      this.minCursor === 0
    )
  }

  /** Delivers now, or buffers while the initial events are still being delivered. */
  offer(event: RuntimeEvent, host: QueryHost): void {
    if (this.closed) return
    const cursor = event.cursor
    if (cursor !== 0 && cursor <= this.minCursor) return
    if (this.minCursor !== 0 && cursor !== 0 && this.pending === null) {
      // Changes come in log order: past the replay's last cursor, none can be at or before it again.
      this.minCursor = 0
      this.table.refresh(this)
    }
    if (this.noLocal && this.clientId !== undefined && eventClientId(event) === this.clientId) return
    if (this.pending !== null) this.pending.push(event)
    else this.deliver(event, host)
  }

  deliver(event: RuntimeEvent, host: QueryHost): void {
    try {
      this.listener(
        this.project === undefined ? event : projected(event, this.selectKey, this.project),
        this.delivery,
      )
    } catch (error) {
      host.onError(error)
    }
  }

  /** Goes live: what arrived during the initial delivery, less what the snapshot or replay covered. */
  flush(host: QueryHost): void {
    const pending = this.pending
    this.pending = null
    if (pending === null) return
    for (const event of pending) {
      if (this.closed) return
      const cursor = event.cursor
      if (
        cursor !== 0 &&
        (cursor <= this.minCursor || (event.type !== 'message' && cursor <= this.snapshotCursor))
      )
        continue
      this.deliver(event, host)
    }
    this.table.refresh(this)
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.pending = null
    this.table.remove(this)
  }
}

/** The client a change came from (the publisher's, or the writer's over REST). */
export function eventClientId(event: RuntimeEvent): string | undefined {
  const metaClient = event.meta?.clientId
  return typeof metaClient === 'string' ? metaClient : event.origin
}

/** Told when a subscription leaves its table (the registry drops a table nobody queries). */
export interface TableOwner {
  removed(table: TableQueries): void
}

/** The subscriptions to queries on one table. */
export class TableQueries {
  /**
   * Subscriptions with the same conditions share one entry (a group): a change is matched once per
   * distinct query, then offered to each member (many clients often follow the same query).
   */
  readonly index = new QuerySubscriptionIndex<QueryGroup>()
  readonly groups = new Map<string, QueryGroup>()
  size = 0
  readonly #owner: TableOwner

  constructor(
    readonly resource: Table,
    owner: TableOwner,
  ) {
    this.#owner = owner
  }

  add(subscription: QuerySubscription, key: string, bound: BoundFilter | undefined): void {
    let group = this.groups.get(key)
    if (group === undefined) {
      group = new QueryGroup(key, subscription.matches)
      this.groups.set(key, group)
      this.index.add(group, bound, subscription.matches)
    }
    subscription.group = group
    group.add(subscription)
    this.size++
  }

  remove(subscription: QuerySubscription): void {
    const group = subscription.group
    if (group === undefined) return
    subscription.group = undefined
    group.remove(subscription)
    if (group.members.length === 0) {
      this.groups.delete(group.key)
      this.index.remove(group)
    }
    this.size--
    this.#owner.removed(this)
  }

  /** A member's `plain` may have changed (it went live, or passed its replay). */
  refresh(subscription: QuerySubscription): void {
    subscription.group?.refresh(subscription)
  }
}

/**
 * The subscriptions of one table with the same conditions, with each member's listener, delivery
 * and `plain` flag in arrays parallel to `members` (and inline for a group of one plain member).
 */
export class QueryGroup {
  /** Replaced, not changed, while `delivering`: an offer loop keeps the arrays it started with. */
  members: QuerySubscription[] = []
  listeners: EventListener[] = []
  deliveries: Delivery[] = []
  plain: boolean[] = []
  /** The listener and delivery of the only member when it is plain, else undefined. */
  single: EventListener | undefined = undefined
  singleDelivery: Delivery | undefined = undefined
  /** Counts removals: a loop that sees it move offers the rest through `offer` (which checks `closed`). */
  removals = 0
  delivering = 0

  constructor(
    readonly key: string,
    readonly matches: (value: unknown) => boolean,
  ) {}

  add(subscription: QuerySubscription): void {
    if (this.delivering > 0) this.#copy()
    subscription.slot = this.members.length
    this.members.push(subscription)
    this.listeners.push(subscription.listener)
    this.deliveries.push(subscription.delivery)
    this.plain.push(subscription.plain)
    this.#sync()
  }

  /** Swap-remove: the last member takes this one's slot (in copies while an event is being offered). */
  remove(subscription: QuerySubscription): void {
    this.removals++
    if (this.delivering > 0) this.#copy()
    const { members, listeners, deliveries, plain } = this
    const slot = subscription.slot
    const last = members.length - 1
    if (slot !== last) {
      members[slot] = members[last]!
      listeners[slot] = listeners[last]!
      deliveries[slot] = deliveries[last]!
      plain[slot] = plain[last]!
      members[slot]!.slot = slot
    }
    members.pop()
    listeners.pop()
    deliveries.pop()
    plain.pop()
    this.#sync()
  }

  /** In place: a member only ever becomes plain, which a loop under way may take as it is. */
  refresh(subscription: QuerySubscription): void {
    this.plain[subscription.slot] = subscription.plain
    this.#sync()
  }

  #copy(): void {
    this.members = this.members.slice()
    this.listeners = this.listeners.slice()
    this.deliveries = this.deliveries.slice()
    this.plain = this.plain.slice()
  }

  #sync(): void {
    const only = this.members.length === 1 && this.plain[0] === true
    this.single = only ? this.listeners[0] : undefined
    this.singleDelivery = only ? this.deliveries[0] : undefined
  }
}
