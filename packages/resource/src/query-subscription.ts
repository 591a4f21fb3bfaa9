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

/**
 * Deliveries without a subscription identifier, one per QoS and retain-as-published: shared by the
 * subscriptions with those options (a delivery is frozen), not one object per subscription.
 */
const SHARED_DELIVERIES: readonly Delivery[] = [0, 1, 2].flatMap((qos) =>
  [false, true].map((retainAsPublished) =>
    Object.freeze({ qos: qos as 0 | 1 | 2, subscriptionIds: NO_IDS, retainAsPublished }),
  ),
)

function deliveryOf(options: SubscribeOptions): Delivery {
  const qos = options.qos ?? 0
  const retainAsPublished = options.retainAsPublished === true
  if (options.subscriptionId === undefined) {
    const shared = SHARED_DELIVERIES[2 * qos + (retainAsPublished ? 1 : 0)]
    if (shared !== undefined) return shared
  }
  return Object.freeze({
    qos,
    subscriptionIds:
      options.subscriptionId !== undefined ? (Object.freeze([options.subscriptionId]) as number[]) : NO_IDS,
    retainAsPublished,
  })
}

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
    this.delivery = deliveryOf(options)
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
  #alone = 0

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
    this.#payload(group)
    this.size++
  }

  /** The next key suffix of a subscription that is a group of its own (see QuerySubscriptions.subscribe). */
  alone(): number {
    return ++this.#alone
  }

  /**
   * A range tree keeps the listener and delivery of a group of one plain member beside its interval
   * and hands them to a change: its deliveries then read no group (see NumberIntervals.setPayload).
   */
  #payload(group: QueryGroup): void {
    const inline = group.inline === 1
    this.index.setPayload(group, inline ? group.listener0 : undefined, inline ? group.delivery0 : undefined)
  }

  remove(subscription: QuerySubscription): void {
    const group = subscription.group
    if (group === undefined) return
    subscription.group = undefined
    group.remove(subscription)
    if (group.members.length === 0) {
      this.groups.delete(group.key)
      this.index.remove(group)
    } else this.#payload(group)
    this.size--
    this.#owner.removed(this)
  }

  /** A member's `plain` may have changed (it went live, or passed its replay). */
  refresh(subscription: QuerySubscription): void {
    const group = subscription.group
    if (group === undefined) return
    group.refresh(subscription)
    this.#payload(group)
  }
}

/**
 * The subscriptions of one table with the same conditions. `calls` holds, for each member in the
 * order of `members`, its listener and delivery when it is plain (else two undefined): a change
 * reads the group and this one array, never the members themselves (each scattered object read per
 * delivery was most of the cost of a change that concerns many subscriptions). A group of one or two
 * plain members keeps them inline too (`inline`), so the array is not read either: most groups of
 * range conditions are that small.
 */
export class QueryGroup {
  /** Replaced, not changed, while `delivering`: an offer loop keeps the arrays it started with. */
  members: QuerySubscription[] = []
  calls: (EventListener | Delivery | undefined)[] = []
  /** 1 or 2 when every member is plain and there are that many (their calls inline below), else 0. */
  inline = 0
  listener0: EventListener | undefined = undefined
  delivery0: Delivery | undefined = undefined
  listener1: EventListener | undefined = undefined
  delivery1: Delivery | undefined = undefined
  /** Counts removals: a loop that sees it move offers the rest through `offer` (which checks `closed`). */
  removals = 0
  delivering = 0

  constructor(
    readonly key: string,
    readonly matches: (value: unknown) => boolean,
  ) {}

  /** Hands a change's event to every member (a listener may close or add members meanwhile). */
  deliver(event: RuntimeEvent, host: QueryHost): void {
    // A listener may close its own or another subscription: add and remove then copy the arrays
    // (no copy per event), so what follows sees the members there were at the start; once one was
    // removed, the rest go through `offer`, which skips a closed one (as does a member not plain).
    const members = this.members
    const removals = this.removals
    const inline = this.inline
    if (inline === 1) {
      try {
        this.listener0!(event, this.delivery0!)
      } catch (error) {
        host.onError(error)
      }
      return
    }
    this.delivering++
    try {
      if (inline === 2) {
        const second = this.listener1!
        const secondDelivery = this.delivery1!
        try {
          this.listener0!(event, this.delivery0!)
        } catch (error) {
          host.onError(error)
        }
        if (this.removals !== removals) members[1]!.offer(event, host)
        else
          try {
            second(event, secondDelivery)
          } catch (error) {
            host.onError(error)
          }
        return
      }
      const calls = this.calls
      for (let i = 0; i < calls.length; i += 2) {
        const listener = calls[i] as EventListener | undefined
        if (listener !== undefined && this.removals === removals) {
          try {
            listener(event, calls[i + 1] as Delivery)
          } catch (error) {
            host.onError(error)
          }
        } else members[i >> 1]!.offer(event, host)
      }
    } finally {
      this.delivering--
    }
  }

  add(subscription: QuerySubscription): void {
    if (this.delivering > 0) this.#copy()
    subscription.slot = this.members.length
    this.members.push(subscription)
    const plain = subscription.plain
    this.calls.push(plain ? subscription.listener : undefined, plain ? subscription.delivery : undefined)
    this.#sync()
  }

  /** Swap-remove: the last member takes this one's slot (in copies while an event is being offered). */
  remove(subscription: QuerySubscription): void {
    this.removals++
    if (this.delivering > 0) this.#copy()
    const { members, calls } = this
    const slot = subscription.slot
    const last = members.length - 1
    if (slot !== last) {
      members[slot] = members[last]!
      calls[2 * slot] = calls[2 * last]
      calls[2 * slot + 1] = calls[2 * last + 1]
      members[slot]!.slot = slot
    }
    members.pop()
    calls.length = 2 * last
    this.#sync()
  }

  /** In place: a member only ever becomes plain, which a loop under way may take as it is. */
  refresh(subscription: QuerySubscription): void {
    const plain = subscription.plain
    const at = 2 * subscription.slot
    this.calls[at] = plain ? subscription.listener : undefined
    this.calls[at + 1] = plain ? subscription.delivery : undefined
    this.#sync()
  }

  #copy(): void {
    this.members = this.members.slice()
    this.calls = this.calls.slice()
  }

  #sync(): void {
    const calls = this.calls
    const n = this.members.length
    const small = (n === 1 || n === 2) && calls[0] !== undefined && (n === 1 || calls[2] !== undefined)
    this.inline = small ? n : 0
    this.listener0 = small ? (calls[0] as EventListener) : undefined
    this.delivery0 = small ? (calls[1] as Delivery) : undefined
    this.listener1 = small && n === 2 ? (calls[2] as EventListener) : undefined
    this.delivery1 = small && n === 2 ? (calls[3] as Delivery) : undefined
  }
}
