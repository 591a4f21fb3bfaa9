import type { ChangeEvent, Store } from '@proj/storage'
import {
  matchesFilter,
  parseSharedSubscription,
  type SharedSubscription,
  validateTopicFilter,
} from '@proj/topic-matcher'
import { TOPICS_TABLE, type TopicsResource } from './builtin-topics.js'
import type { ConnectScopes } from './connect-scope.js'
import { ResourceError } from './errors.js'
import type { RuntimeEvent } from './event.js'
import { literalPrefix, splitAtWildcard } from './filter-prefix.js'
import { deliverInitial } from './initial-delivery.js'
import { IssuedBefore } from './issued-before.js'
import type { Access, Permissions } from './permissions.js'
import { type QuerySubscriptions, splitQueryFilter } from './query-subscriptions.js'
import { Resource } from './resource.js'
import type { Route, Router } from './router.js'
import { SubscriptionImpl, type SubscriptionRegistry } from './subscriptions.js'
import { Table } from './table.js'
import type { EventListener, RequestContext, SubscribeOptions, Subscription, User } from './types.js'

/** A Subscription plus `ready`: resolves once current values / replayed events were delivered and it is live. */
export interface RuntimeSubscription extends Subscription {
  readonly ready: Promise<void>
  /** Change-log cursor when the subscription was made (a durable session may store it as its position). */
  readonly cursor: number
}

/** What a filter reaches: resources (each with the filter inside it) and maybe unclaimed topics. */
interface Scope {
  targets: { resource: Resource; idFilter: string }[]
  unclaimed: boolean
}

export interface SubscribeFlowInit {
  store: Store
  router: Router<Resource>
  topics: TopicsResource
  registry: SubscriptionRegistry
  permissions: Permissions
  scopes: ConnectScopes
  queries: QuerySubscriptions
  rejectUnclaimed: boolean
  closed: () => boolean
  onError: (error: unknown) => void
  toEvent: (change: ChangeEvent) => RuntimeEvent | null
}

/**
 * Subscribing to a topic filter: which resources (and unclaimed topics) it reaches, the permission
 * decided once for the filter, then current values (retained) and the change-log replay after a cursor
 * before the subscription goes live.
 */
export class SubscribeFlow {
  readonly #init: SubscribeFlowInit

  constructor(init: SubscribeFlowInit) {
    this.#init = init
  }

  /** A resource that overrides subscribe() gets subscriptions that name it literally. */
  subscribe(
    filter: string,
    listener: EventListener,
    options: SubscribeOptions,
    ctx: RequestContext,
  ): Promise<RuntimeSubscription> {
    this.#assertOpen()
    const user = this.#init.permissions.user(ctx)
    const query = splitQueryFilter(filter)
    if (query !== undefined)
      return Promise.resolve(this.subscribeQuery(filter, query, listener, options, ctx))
    assertFilter(filter)
    const shared = parseSharedSubscription(filter)
    const inner = shared ? shared.filter : filter
    const route =
      inner.includes('+') || inner.includes('#')
        ? this.#literalRoute(inner)
        : this.#init.router.resolve(inner)
    if (
      !shared &&
      route &&
      route.idText !== '' &&
      route.resource.subscribe !== Resource.prototype.subscribe
    ) {
      return route.resource.subscribe(route.idText, listener, options, ctx).then(withReady)
    }
    return this.#subscribe(filter, shared, user, listener, options, ctx)
  }

  /** `Dog/?breed=Lab`: a subscription to the records of a table that match a query. */
  subscribeQuery(
    filter: string,
    query: { path: string; query: string },
    listener: EventListener,
    options: SubscribeOptions,
    ctx: RequestContext,
  ): RuntimeSubscription {
    const user = this.#init.permissions.user(ctx)
    if (filter.startsWith('$share/'))
      throw new ResourceError('INVALID', `a query cannot be a shared subscription: ${filter}`)
    const route = this.#init.router.resolve(query.path)
    const resource = route?.resource
    if (!(resource instanceof Table) || route!.idText !== '')
      throw new ResourceError('NOT_FOUND', `no table at ${query.path} to query`)
    this.#init.permissions.assertTable(ctx, user, resource.permissionKeys, 'read', query.path)
    const subscription = this.#init.queries.subscribe(filter, query.query, resource, listener, options, ctx)
    this.#init.scopes.track(subscription)
    return subscription
  }

  /** The route of a wildcard filter's literal prefix when it lies inside one resource (`Dog/a/#`). */
  #literalRoute(filter: string): Route<Resource> | null {
    const split = splitAtWildcard(filter)
    const { segments, firstWild } = split
    if (firstWild <= 0) return null
    const route = this.#init.router.resolve(literalPrefix(split))
    if (!route) return null
    const literalId = route.idText
    return {
      resource: route.resource,
      idText: [literalId, ...segments.slice(firstWild)].filter((s) => s !== '').join('/'),
    }
  }

  /** The generic subscription: trie entry, permission check, initial (retained / replayed) events. */
  subscribeFilter(
    filter: string,
    listener: EventListener,
    options: SubscribeOptions,
    ctx: RequestContext,
  ): Promise<RuntimeSubscription> {
    this.#assertOpen()
    const user = this.#init.permissions.user(ctx)
    assertFilter(filter)
    return this.#subscribe(filter, parseSharedSubscription(filter), user, listener, options, ctx)
  }

  #subscribe(
    filter: string,
    shared: SharedSubscription | null,
    user: User,
    listener: EventListener,
    options: SubscribeOptions,
    ctx: RequestContext,
  ): Promise<RuntimeSubscription> {
    const { registry, store } = this.#init
    const canonical = this.#canonicalFilter(shared ? shared.filter : filter)
    const scope = this.#scope(canonical)
    if (scope.targets.length === 0 && !scope.unclaimed) {
      throw new ResourceError('NOT_FOUND', `no resource matches ${filter}`)
    }
    const check = this.#subscribeCheck(ctx, user, canonical, scope)
    const subscription = new SubscriptionImpl(
      registry,
      registry.owner(listener),
      filter,
      canonical,
      {
        qos: options.qos ?? 0,
        ...(options.subscriptionId !== undefined ? { subscriptionId: options.subscriptionId } : {}),
        noLocal: options.noLocal === true,
        retainAsPublished: options.retainAsPublished === true,
        ...(ctx.clientId !== undefined ? { clientId: ctx.clientId } : {}),
        ...(options.canDeliver !== undefined ? { canDeliver: options.canDeliver } : {}),
      },
      check,
    )
    if (shared) subscription.group = shared.group
    subscription.cursor = store.log.lastCursor
    // Shared subscriptions get no retained messages [MQTT-4.8.2-?]; only a resume replays.
    const retained = options.retained !== false && !shared
    const after = options.after
    const issuer = options.issuer
    if (after !== undefined && issuer !== undefined && issuer !== store.log.issuer)
      subscription.issued = new IssuedBefore(issuer, after, (cursor) => store.log.originOf(cursor))
    let joined: Promise<void> | undefined
    if (retained || after !== undefined) {
      subscription.pending = []
      joined = registry.add(subscription)
      subscription.ready = new Promise((resolve) => {
        const live = () => {
          subscription.flush()
          resolve()
        }
        // After the caller got its Subscription (and, for MQTT, sent SUBACK): current values, replay, then live.
        setImmediate(() => {
          let paused: Promise<void> | undefined
          try {
            if (!subscription.closed && !this.#init.closed())
              paused = deliverInitial(
                subscription,
                // current values alone (a new MQTT subscription) without the replay's generator around them
                after === undefined
                  ? this.#retainedEvents(subscription, scope)
                  : this.#initialEvents(subscription, scope, retained, after, options.issuer),
                options.pace,
                this.#init.closed,
                this.#init.onError,
              )
          } catch (error) {
            this.#init.onError(error)
          }
          if (paused === undefined) live()
          else paused.then(live)
        })
      })
    } else {
      joined = registry.add(subscription)
    }
    // Inside a custom connect(): closed with its connection.
    this.#init.scopes.track(subscription)
    // a shared group spread over a cluster: acknowledged once the group counts this runtime's members
    return joined === undefined ? Promise.resolve(subscription) : joined.then(() => subscription)
  }

  /** A filter whose first segment matches an export path only case-insensitively uses the export path. */
  #canonicalFilter(filter: string): string {
    const literal = literalPrefix(splitAtWildcard(filter))
    if (literal === '' || filter.startsWith('$')) return filter
    const route = this.#init.router.resolve(literal)
    if (!route) return filter
    const path = route.resource.path
    if (literal.startsWith(path) && (literal.length === path.length || literal[path.length] === '/'))
      return filter
    const consumed = literal.length - route.idText.length - (route.idText === '' ? 0 : 1)
    return path + filter.slice(consumed)
  }

  #scope(filter: string): Scope {
    const router = this.#init.router
    const split = splitAtWildcard(filter)
    const { segments, firstWild } = split
    const targets: Scope['targets'] = []
    if (!filter.startsWith('$')) {
      for (const resource of router.resources()) {
        const path = resource.path.split('/')
        let idFilter: string | undefined
        for (let i = 0; ; i++) {
          const s = segments[i]
          if (s === '#') {
            idFilter = '#'
            break
          }
          if (i === path.length) {
            if (s !== undefined) idFilter = segments.slice(i).join('/')
            break
          }
          if (s === undefined || (s !== '+' && s !== path[i])) break
        }
        if (idFilter !== undefined) targets.push({ resource, idFilter })
      }
    }
    let unclaimed = !this.#init.rejectUnclaimed
    if (unclaimed && firstWild !== 0) unclaimed = router.resolve(literalPrefix(split)) === null
    return { targets, unclaimed }
  }

  #subscribeCheck(
    ctx: RequestContext,
    user: User,
    filter: string,
    scope: Scope,
  ): ((event: RuntimeEvent) => boolean) | null {
    const permissions = this.#init.permissions
    if (permissions.isSuperUser(user)) return null
    const allowed = new Set<string>()
    let denied = 0
    for (const { resource } of scope.targets) {
      if (permissions.tableAllowed(user, resource.permissionKeys, 'read')) allowed.add(resource.path)
      else denied++
    }
    const topicAccess: Access = scope.unclaimed
      ? permissions.filterAccess(user, ctx.clientId, filter)
      : 'none'
    if (allowed.size === 0 && topicAccess === 'none') permissions.deny(ctx, `subscribe to ${filter}`)
    if (denied === 0 && (!scope.unclaimed || topicAccess === 'all')) return null
    const clientId = ctx.clientId
    return (event) =>
      event.path === ''
        ? topicAccess === 'all' ||
          (topicAccess === 'some' && permissions.topicAllowed(user, clientId, event.topic, 'subscribe'))
        : allowed.has(event.path)
  }

  /** Current values (retained), then the log replay after a cursor: what a subscription gets before it goes live. */
  *#initialEvents(
    subscription: SubscriptionImpl,
    scope: Scope,
    retained: boolean,
    after: number | undefined,
    issuer: number | undefined,
  ): Generator<RuntimeEvent, void, undefined> {
    const { store } = this.#init
    if (retained) yield* this.#retainedEvents(subscription, scope)
    if (after === undefined) return
    let changes: Iterable<ChangeEvent>
    const tables = scope.unclaimed
      ? undefined
      : scope.targets.map((t) => (t.resource instanceof Table ? t.resource.table.name : TOPICS_TABLE))
    const read = (from: number) => store.log.readSince({ after: from, tables, issuer })
    try {
      changes = read(after)
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'STORAGE_LOG_TRUNCATED') throw error
      // The session fell behind retention: current values stand in for what was dropped.
      if (!retained) yield* this.#retainedEvents(subscription, scope)
      changes = read(Math.max(0, store.log.firstCursor - 1))
    }
    const filter = subscription.trieFilter
    let last = after
    for (const change of changes) {
      // another node's cursor: this node's own events it lacked come first, numbered at or below it
      if (change.cursor > last) last = change.cursor
      const event = this.#init.toEvent(change)
      if (event === null || !matchesFilter(filter, event.topic) || !subscription.accepts(event)) continue
      yield event
    }
    subscription.minCursor = last
  }

  /** The current values the subscription may read; the last carries the cursor to resume after. */
  *#retainedEvents(subscription: SubscriptionImpl, scope: Scope): Generator<RuntimeEvent, void, undefined> {
    const { store, topics } = this.#init
    const filter = subscription.trieFilter
    const check = subscription.check
    // The visible cursor, not the durable one: a commit still syncing is in the snapshot read below,
    // so its event (dispatched after the sync) must be skipped, not delivered after that state.
    const cursor = (subscription.snapshotCursor = store.log.visibleCursor)
    // One event is held back, so the last current value can carry the cursor to resume after.
    let held: RuntimeEvent | undefined
    for (const { resource, idFilter } of scope.targets) {
      for (const event of resource.snapshot(idFilter, filter)) {
        if (check !== null && !check(event)) continue
        if (held !== undefined) yield held
        held = event
      }
    }
    if (scope.unclaimed) {
      for (const event of topics.snapshot(filter, filter)) {
        if (check !== null && !check(event)) continue
        if (held !== undefined) yield held
        held = event
      }
    }
    if (held !== undefined) {
      held.resumeCursor = cursor
      yield held
    }
  }

  #assertOpen(): void {
    if (this.#init.closed()) throw new ResourceError('CLOSED', 'the runtime is closed')
  }
}

function assertFilter(filter: string): void {
  const valid = validateTopicFilter(filter)
  if (!valid.ok)
    throw new ResourceError('INVALID', `invalid topic filter ${JSON.stringify(filter)}: ${valid.reason}`)
}

const READY = Promise.resolve()

function withReady(subscription: Subscription): RuntimeSubscription {
  return 'ready' in subscription
    ? (subscription as RuntimeSubscription)
    : Object.assign(subscription, { ready: READY, cursor: 0 })
}
