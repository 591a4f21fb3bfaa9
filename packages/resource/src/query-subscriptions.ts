/**
 * Subscriptions to a query (`Dog/?breed=Lab&age=gt=3` on every door): the records that match now, then
 * each change as it enters, updates or leaves the result. One QuerySubscriptionIndex per table finds
 * the subscriptions a change can concern; the storage's `previous` value of each change tells enter
 * from update and leave, live and when a resume replays the change log.
 */
import {
  assertSubscribable,
  type BoundFilter,
  bindFilter,
  compileFilter,
  compileSelect,
  type FilterNode,
  filedByOneRange,
  parseQuery,
  type Query,
  type Transition,
} from '@proj/query'
import type { ChangeEvent } from '@proj/storage'
import { ResourceError } from './errors.js'
import { RuntimeEvent } from './event.js'
import { runListQuery } from './list-page.js'
import { fromStored } from './own-keys.js'
import {
  type Derived,
  derivedOf,
  enterEvent,
  leaveEvent,
  newEnterEvent,
  newLeaveEvent,
  withEventProperty,
} from './query-events.js'
import {
  eventClientId,
  type QueryGroup,
  type QueryHost,
  QuerySubscription,
  type TableOwner,
  TableQueries,
} from './query-subscription.js'
import { Relationships } from './relationships.js'
import { toResourceError } from './storage-writes.js'
import type { Table } from './table.js'
import type { Delivery, EventListener, RequestContext, SubscribeOptions } from './types.js'

/** `Dog/?breed=Lab` (or `Dog?breed=Lab`) → the table path and the raw query; undefined for a plain filter. */
export function splitQueryFilter(filter: string): { path: string; query: string } | undefined {
  const q = filter.indexOf('?')
  if (q < 0) return undefined
  const path = filter.slice(0, q)
  return { path: path.endsWith('/') ? path.slice(0, -1) : path, query: filter.slice(q + 1) }
}

/**
 * Every query subscription of a runtime, by table. `onChange` is called for each logged change and
 * `onMessage` for unlogged (QoS 0) messages; both return at once for tables nobody queries.
 */
export class QuerySubscriptions implements TableOwner {
  readonly #host: QueryHost
  readonly #tables = new Map<string, TableQueries>()
  #size = 0
  // The change being matched (no closure per change).
  #event: RuntimeEvent | undefined = undefined
  #deleted = false
  #derived: Derived | undefined = undefined
  /** The change's enter and leave events, made by the first subscriber that needs each. */
  #enter: RuntimeEvent | undefined = undefined
  #leave: RuntimeEvent | undefined = undefined
  readonly #visit = (
    group: QueryGroup,
    transition: Transition,
    listener: unknown,
    delivery: unknown,
  ): void => {
    const event = this.#eventFor(transition)
    if (listener === undefined) {
      group.deliver(event, this.#host)
      return
    }
    // A group of one plain member, from the range tree (see TableQueries): no group read.
    try {
      ;(listener as EventListener)(event, delivery as Delivery)
    } catch (error) {
      this.#host.onError(error)
    }
  }

  /**
   * A run of range-tree entries with one transition (see RunVisitor): each group of one plain member
   * has its listener and delivery as the entry's payload, called here without a call per entry in
   * between and without reading the group (only an entry without a listener needs it).
   */
  readonly #visitRun = (
    items: readonly unknown[],
    payloads: readonly unknown[],
    from: number,
    to: number,
    transition: Transition,
  ): number => {
    const event = this.#eventFor(transition)
    const host = this.#host
    let visited = 0
    for (let i = from; i < to; i++) {
      // Read at its turn: a listener before it may have closed it (then all undefined) or changed it.
      const listener = payloads[2 * i] as EventListener | undefined
      if (listener !== undefined) {
        visited++
        try {
          listener(event, payloads[2 * i + 1] as Delivery)
        } catch (error) {
          host.onError(error)
        }
        continue
      }
      const group = items[i] as QueryGroup | undefined
      if (group === undefined) continue
      visited++
      group.deliver(event, host)
    }
    return visited
  }

  constructor(host: QueryHost) {
    this.#host = host
  }

  get size(): number {
    return this.#size
  }

  /** Whether any query subscription follows the storage table `name`. */
  watches(name: string): boolean {
    return this.#tables.has(name)
  }

  /** @internal a subscription left its table's index */
  removed(table: TableQueries): void {
    this.#size--
    if (table.size === 0 && this.#tables.get(table.resource.table.name) === table)
      this.#tables.delete(table.resource.table.name)
  }

  /**
   * Subscribes to `query` (the raw text after `?`) on `resource`; the caller has checked read
   * permission. Current matching records are delivered after the promise resolves (`ready`), or, with
   * `after`, the changes since that cursor with their transitions (a `reset` and a fresh snapshot when
   * the log no longer reaches back that far).
   */
  subscribe(
    filter: string,
    queryText: string,
    resource: Table,
    listener: EventListener,
    options: SubscribeOptions,
    ctx: RequestContext,
  ): QuerySubscription {
    let query: Query
    let bound: BoundFilter | undefined
    const relationships = new Relationships(resource.catalog, resource.schema, () => {})
    try {
      query = parseQuery(queryText)
      assertSubscribable(query)
      if (query.filter !== undefined) {
        const through = relationshipPath(query.filter, resource)
        if (through !== undefined)
          throw new ResourceError(
            'INVALID',
            `a query subscription cannot follow the relationship ${through} (its changes are not watched)`,
          )
        bound = bindFilter(query.filter, relationships.types(resource.handle))
      }
    } catch (error) {
      throw toResourceError(error)
    }
    const project =
      query.select === undefined
        ? undefined
        : compileSelect(query.select, { field: relationships.field(resource.handle) })
    const name = resource.table.name
    let table = this.#tables.get(name)
    if (table === undefined) this.#tables.set(name, (table = new TableQueries(resource, this)))
    // The group's predicate when others follow the same conditions: one compiled filter per query.
    // A subscription filed by one numeric range is a group of its own (a key of its own), so that the
    // range tree hands a change its listener and delivery directly (TableQueries keeps them there):
    // sharing the group would save only the interval, and cost a group read per delivery.
    const shared = filterKey(query)
    const alone = filedByOneRange(bound)
    const key = alone ? `${shared}\u0000${table.alone()}` : shared
    const matches = (alone ? undefined : table.groups.get(key)?.matches) ?? compileFilter(bound)
    const subscription = new QuerySubscription(
      filter,
      table,
      listener,
      options,
      ctx,
      matches,
      project,
      query.select === undefined ? '' : JSON.stringify(query.select),
    )
    const store = this.#host.store
    subscription.cursor = store.log.lastCursor
    const after = options.after
    const live = options.retained === false && after === undefined
    // Buffering from the start, so that it joins its group as not plain (see QuerySubscription.plain).
    if (!live) subscription.pending = []
    table.add(subscription, key, bound)
    this.#size++
    if (live) return subscription
    subscription.ready = new Promise((resolve) => {
      // After the caller has its subscription (MQTT sends SUBACK first): snapshot or replay, then live.
      setImmediate(() => {
        try {
          if (!subscription.closed && !this.#host.closed())
            this.#initial(subscription, bound, after, options.issuer)
        } catch (error) {
          this.#host.onError(error)
        } finally {
          subscription.flush(this.#host)
          resolve()
        }
      })
    })
    return subscription
  }

  #initial(
    subscription: QuerySubscription,
    bound: BoundFilter | undefined,
    after: number | undefined,
    issuer: number | undefined,
  ): void {
    if (after === undefined) {
      this.#snapshot(subscription, bound)
      return
    }
    const store = this.#host.store
    const resource = subscription.table.resource
    let changes: Iterable<ChangeEvent>
    try {
      changes = store.log.readSince({ after, tables: [resource.table.name], issuer })
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'STORAGE_LOG_TRUNCATED') throw error
      // Fell behind retention: the subscriber starts over from the current result.
      const reset = new RuntimeEvent(
        'reset',
        subscription.filter,
        resource.path,
        '',
        store.clock.now(),
        0,
        undefined,
        false,
        withEventProperty(undefined, 'reset'),
      )
      subscription.deliver(reset, this.#host)
      this.#snapshot(subscription, bound)
      return
    }
    let last = after
    for (const change of changes) {
      if (subscription.closed) return
      if (change.cursor > last) last = change.cursor
      const event = this.#host.toEvent(change)
      if (event === null) continue
      const transition = replayTransition(change, event, subscription.matches)
      if (transition === undefined) continue
      this.#event = event
      this.#deleted = event.type === 'delete'
      this.#derived = undefined
      const delivered =
        transition === 'update'
          ? event
          : transition === 'enter'
            ? this.#enterEvent(event)
            : this.#leaveEvent(event)
      this.#event = undefined
      if (subscription.noLocal && eventClientId(event) === subscription.clientId) continue
      subscription.deliver(delivered, this.#host)
    }
    subscription.minCursor = last
  }

  /** The records that match now, as retained puts; the last carries the cursor they are as of. */
  #snapshot(subscription: QuerySubscription, filter: BoundFilter | undefined): void {
    const resource = subscription.table.resource
    const cursor = (subscription.snapshotCursor = this.#host.store.log.lastCursor)
    const relationships = new Relationships(resource.catalog, resource.schema, () => {})
    // The table's indexes serve the snapshot as they serve a list (read synchronously, as of `cursor`).
    const page = runListQuery(
      { filter, where: [], limit: undefined, offset: 0, after: undefined, sort: [], select: undefined },
      { table: resource.handle, catalog: resource.catalog, relationships, counter: resource.reads },
    ).items
    let held: RuntimeEvent | undefined
    for (const item of page) {
      if (subscription.closed) return
      if (held !== undefined) subscription.deliver(held, this.#host)
      const event = new RuntimeEvent(
        'put',
        resource.topicFor(item.id),
        resource.path,
        item.id,
        item.version,
        0,
        undefined,
        true,
        undefined,
      )
      event.value = item.value
      held = event
    }
    if (held !== undefined && !subscription.closed) {
      held.resumeCursor = cursor
      subscription.deliver(held, this.#host)
    }
  }

  /** A logged change (put, patch, delete or message) of any table. */
  onChange(change: ChangeEvent, event: RuntimeEvent): void {
    const table = this.#tables.get(change.table)
    if (table === undefined) return
    const previous = change.previous
    let before: unknown
    let after: unknown
    if (event.type === 'message') {
      before = after = previous ? fromStored(previous.value) : table.resource.table.get(change.id)
    } else {
      // Without a previous value (a change the storage did not record it for) a match is an enter.
      before = previous ? fromStored(previous.value) : undefined
      after = event.type === 'delete' ? undefined : event.value
    }
    this.#match(table, event, before, after)
  }

  /** An unlogged (QoS 0) message: delivered to the subscriptions whose query the record matches now. */
  onMessage(event: RuntimeEvent): void {
    if (event.type !== 'message' || event.path === '') return
    for (const table of this.#tables.values()) {
      if (table.resource.path !== event.path) continue
      const value = fromStored(table.resource.table.get(event.id))
      if (value !== undefined) this.#match(table, event, value, value)
    }
  }

  #match(table: TableQueries, event: RuntimeEvent, before: unknown, after: unknown): void {
    // A listener may cause a change of its own (nested): this one's state is restored after it.
    const outerEvent = this.#event
    const outerDeleted = this.#deleted
    const outerEnter = this.#enter
    const outerLeave = this.#leave
    this.#event = event
    this.#deleted = event.type === 'delete'
    this.#enter = undefined
    this.#leave = undefined
    try {
      table.index.changes(before, after, this.#visit, this.#visitRun)
    } finally {
      this.#event = outerEvent
      this.#deleted = outerDeleted
      this.#enter = outerEnter
      this.#leave = outerLeave
    }
  }

  /**
   * The event a subscriber gets for the change being matched, by what it did to its result: each
   * made once per change and handed to every subscriber with that transition.
   */
  #eventFor(transition: Transition): RuntimeEvent {
    if (transition === 'update') return this.#event!
    if (transition === 'enter') {
      const event = this.#event!
      return (this.#enter ??= event.type === 'put' || event.type === 'message' ? event : newEnterEvent(event))
    }
    return (this.#leave ??= newLeaveEvent(this.#event!, this.#deleted))
  }

  #derivedOf(event: RuntimeEvent): Derived {
    this.#derived ??= derivedOf(event)
    return this.#derived
  }

  #enterEvent(event: RuntimeEvent): RuntimeEvent {
    if (event.type === 'put' || event.type === 'message') return event
    return enterEvent(event, this.#derivedOf(event))
  }

  #leaveEvent(event: RuntimeEvent): RuntimeEvent {
    return leaveEvent(event, this.#derivedOf(event), this.#deleted)
  }
}

/** For one subscription during a replay: what the logged change did to its result. */
function replayTransition(
  change: ChangeEvent,
  event: RuntimeEvent,
  matches: (value: unknown) => boolean,
): Transition | undefined {
  const previous = change.previous
  if (event.type === 'message') {
    // A message reaches a record that matched when it was sent; unknown without a previous value.
    return previous && matches(fromStored(previous.value)) ? 'update' : undefined
  }
  const isIn = event.type !== 'delete' && matches(event.value)
  if (previous === undefined) {
    // A log entry without the replaced record: a match is delivered as a put, a delete as a delete.
    return isIn ? 'enter' : event.type === 'delete' ? 'leave' : undefined
  }
  const wasIn = previous !== null && matches(fromStored(previous.value))
  return wasIn ? (isIn ? 'update' : 'leave') : isIn ? 'enter' : undefined
}

/** Subscriptions whose conditions are the same share a group: the conditions without text positions. */
function filterKey(query: Query): string {
  return query.filter === undefined
    ? ''
    : JSON.stringify(query.filter, (key, value) => (key === 'position' ? undefined : value))
}

/** The first condition path that starts with a relationship attribute, as text. */
function relationshipPath(node: FilterNode, resource: Table): string | undefined {
  if (node.type === 'condition') {
    const first = node.path[0]
    const attribute = resource.definition.attributes.find((a) => a.name === first)
    return attribute?.relationship ? node.path.join('.') : undefined
  }
  for (const child of node.children) {
    const found = relationshipPath(child, resource)
    if (found !== undefined) return found
  }
  return undefined
}
