import type { ChangeEvent, Key, Store } from '@proj/storage'
import { assertTopicName, TOPICS_TABLE, TopicsResource } from './builtin-topics.js'
import { ChangeEvents } from './change-events.js'
import { connectQuery, connectResource, connectTopic } from './connect-flow.js'
import { ConnectScopes } from './connect-scope.js'
import { ResourceError } from './errors.js'
import type { RuntimeEvent } from './event.js'
import { settleWith, tellLater } from './listened-publish.js'
import { loadResources } from './load-resources.js'
import { Permissions, type RoleDefinition } from './permissions.js'
import { publishRecord } from './publish-record.js'
import { QuerySubscriptions, splitQueryFilter } from './query-subscriptions.js'
import type { Resource, ResourceHost } from './resource.js'
import { Router } from './router.js'
import { RuntimeAccess, trimPath } from './runtime-access.js'
import { createHost } from './runtime-host.js'
import { type RuntimeStorage, storageView } from './runtime-storage.js'
import type { ResourceClass, ResourceRuntime, RuntimeOptions, TableClass } from './runtime-types.js'
import type { SchemaDefinition } from './schema.js'
import { StateStores, type TableStateStore } from './state-store.js'
import { toResourceError } from './storage-writes.js'
import { type RuntimeSubscription, SubscribeFlow } from './subscribe-flow.js'
import { SubscriptionRegistry } from './subscriptions.js'
import { Table } from './table.js'
import { sweepExpired } from './table-expiry.js'
import type { TopicRecord } from './topic-record.js'
import type {
  ConnectResume,
  EventListener,
  ListPage,
  ListQuery,
  PublishListener,
  PublishMessage,
  PublishOptions,
  PublishResult,
  RecordResult,
  RequestContext,
  ResourceEvent,
  ScramCredential,
  StateStore,
  SubscribeOptions,
  User,
  WriteResult,
} from './types.js'
import type { UserChangeListener } from './user-changes.js'
import { Users } from './users.js'

/**
 * The runtime every transport talks to, as a façade: each call resolves its target (a record of a
 * resource, or a topic no table claims, which falls back to the built-in topics resource), checks the
 * caller's permission, and delegates. Opening lives in open-runtime.ts, subscribing in
 * subscribe-flow.ts, change events and their encodings in change-events.ts.
 */
export class RuntimeImpl implements ResourceRuntime {
  /** Cursors, table sizes and commit statistics of the store: no record reads or writes. */
  readonly storage: RuntimeStorage
  readonly #store: Store
  readonly schema: SchemaDefinition
  readonly users: Users
  readonly tables: Record<string, TableClass> = {}
  readonly #ownStore: boolean
  readonly #topics: TopicsResource
  readonly #router = new Router<Resource>()
  readonly #registry: SubscriptionRegistry
  readonly #queries: QuerySubscriptions
  readonly #permissions: Permissions
  readonly #byStorageName = new Map<string, Resource>()
  readonly #states: StateStores
  readonly #events: ChangeEvents
  readonly #subscribe: SubscribeFlow
  readonly #rejectUnclaimed: boolean
  readonly #access: RuntimeAccess
  readonly #maxPayload: number
  readonly #onError: (error: unknown) => void
  readonly #unsubscribeFeed: () => void
  readonly #timers: NodeJS.Timeout[] = []
  readonly #host: ResourceHost
  readonly #scopes = new ConnectScopes()
  readonly #relay: ((event: RuntimeEvent) => void) | undefined
  /** Roles from the applications' config.json: kept when the configured roles are replaced. */
  readonly #appRoles: RoleDefinition[]
  #closed = false
  readonly #normalize = (mediaType: string) => this.#events.normalize(mediaType)

  constructor(
    store: Store,
    ownStore: boolean,
    schema: SchemaDefinition,
    roles: RoleDefinition[],
    options: RuntimeOptions,
  ) {
    this.#store = store
    this.storage = storageView(store)
    this.#ownStore = ownStore
    this.#states = new StateStores(store)
    this.schema = schema
    this.#rejectUnclaimed = options.rejectUnclaimedTopics === true
    this.#maxPayload = options.maxPayloadBytes ?? Number.POSITIVE_INFINITY
    this.#onError = options.onError ?? ((error) => console.error('@proj/resource:', error))
    this.#appRoles = roles.slice(0, roles.length - (options.roles?.length ?? 0))
    this.#permissions = new Permissions(
      roles,
      options.allowAnonymous === true,
      options.anonymousRole ?? 'anonymous',
    )
    this.#relay = options.relay
    this.#registry = new SubscriptionRegistry((error) => this.#onError(error), options.shared)
    this.#queries = new QuerySubscriptions({
      store,
      closed: () => this.#closed,
      toEvent: (change) => this.#events.toEvent(change),
      onError: (error) => this.#onError(error),
    })
    this.#events = new ChangeEvents((topic) => this.#router.resolve(topic), this.#byStorageName)
    this.users = new Users(
      this.state('__users') as TableStateStore<never>,
      this.state('__system') as TableStateStore<unknown>,
      this.#permissions,
      options.auth,
      (error) => this.#onError(error),
    )
    this.#host = createHost({
      store,
      dispatch: (event) => this.#dispatchTransient(event),
      events: this.#events,
      states: this.#states,
      scopes: this.#scopes,
      permissions: this.#permissions,
      subscribeFilter: (filter, listener, options, ctx) =>
        this.#subscribe.subscribeFilter(filter, listener, options, ctx),
      logMessage: (topic, message, ctx, options) =>
        this.#topics.logMessage(topic, message, ctx, options?.atomic),
      publish: (topic, message, ctx) => this.publish(topic, message, ctx),
    })
    this.#topics = new TopicsResource(
      this.#host,
      store.table<TopicRecord>(TOPICS_TABLE),
      (topic) => this.#router.resolve(topic) !== null,
      () => this.#registry.size !== 0 || this.#relay !== undefined,
      (event) => this.#dispatchTransient(event),
    )
    this.#access = new RuntimeAccess(
      this.#router,
      this.#topics,
      this.#permissions,
      this.#rejectUnclaimed,
      () => this.#closed,
    )
    this.#subscribe = new SubscribeFlow({
      store,
      router: this.#router,
      topics: this.#topics,
      registry: this.#registry,
      permissions: this.#permissions,
      scopes: this.#scopes,
      queries: this.#queries,
      rejectUnclaimed: this.#rejectUnclaimed,
      closed: () => this.#closed,
      onError: (error) => this.#onError(error),
      toEvent: (change) => this.#events.toEvent(change),
    })
    this.#unsubscribeFeed = store.onChange((change) => this.#onChange(change))
  }

  /** Creates table classes and resources and registers their export paths. */
  async register(
    modules: Record<string, unknown>[],
    extra: Record<string, ResourceClass>,
    context: Record<string, unknown>,
  ): Promise<void> {
    const resources = await loadResources({
      store: this.#store,
      schema: this.schema,
      host: this.#host,
      modules,
      extra,
      context,
      tables: this.tables,
    })
    for (const resource of resources) {
      this.#router.add(resource)
      if (resource instanceof Table) {
        this.#byStorageName.set(resource.table.name, resource)
        if (resource.definition.expiration)
          this.#timers.push(sweepExpired(resource, () => this.#closed, this.#onError))
      }
    }
  }

  // ---- identity -------------------------------------------------------------------------------

  authenticate(username: string, password: string, source?: string): Promise<User | null> {
    return this.users.authenticate(username, password, source)
  }

  anonymous(): User | null {
    return this.#permissions.anonymous
  }

  async findUser(username: string): Promise<User | null> {
    return this.users.find(username)
  }

  async scramCredentials(username: string): Promise<ScramCredential | null> {
    return this.users.scramCredentials(username)
  }

  issueToken(user: User, options?: { expiresInMs?: number }): Promise<string> {
    return this.users.issueToken(user, options)
  }

  verifyToken(token: string): Promise<User | null> {
    return this.users.verifyToken(token)
  }

  onUserChange(listener: UserChangeListener): () => void {
    return this.users.onChange(listener)
  }

  // ---- routing --------------------------------------------------------------------------------

  resolve(target: string): { path: string; id: Key | undefined; resource: Resource } | null {
    const route = this.#router.resolve(trimPath(target))
    if (!route) return null
    return {
      path: route.resource.path,
      id: route.idText === '' ? undefined : route.resource.coerceId(route.idText),
      resource: route.resource,
    }
  }

  get cursorIssuer(): number | undefined {
    return this.#store.log.issuer
  }

  get subscriptionCount(): number {
    return this.#registry.size + this.#queries.size
  }

  isSuperUser(user: User | null): boolean {
    return user !== null && this.#permissions.isSuperUser(user)
  }

  roles(): RoleDefinition[] {
    return this.#permissions.roles()
  }

  reconfigure(options: Pick<RuntimeOptions, 'roles' | 'allowAnonymous' | 'anonymousRole'>): void {
    this.#permissions.reconfigure(
      [...this.#appRoles, ...(options.roles ?? [])],
      options.allowAnonymous === true,
      options.anonymousRole ?? 'anonymous',
    )
  }

  resources(): Map<string, Resource> {
    const out = new Map<string, Resource>()
    for (const resource of this.#router.resources()) out.set(resource.path, resource)
    return out
  }

  // ---- REST-style -----------------------------------------------------------------------------

  async get(target: string, ctx: RequestContext): Promise<RecordResult | undefined> {
    const { user, path, route } = this.#access.route(target, ctx)
    const resource = route.resource
    this.#access.check(ctx, user, route, 'read', path)
    // `Dog/123.name`: one declared attribute of a record.
    const property = resource instanceof Table ? resource.propertyTarget(route.idText) : undefined
    if (property && resource instanceof Table) {
      const record = await resource.get(property.id, ctx)
      if (!record) return undefined
      return { ...record, value: resource.property(record.value, property.attribute, ctx) ?? null }
    }
    const id = this.#access.recordId(route, 'get')
    const result = await resource.get(id, ctx)
    if (result === undefined) return undefined
    if (
      result !== null &&
      typeof result === 'object' &&
      'value' in result &&
      typeof (result as RecordResult).version === 'number'
    ) {
      return result as RecordResult
    }
    return { id, value: result, version: 0 }
  }

  async list(path: string, query: ListQuery, ctx: RequestContext): Promise<RecordResult[]> {
    return this.#listRoute(path, ctx).list(query, ctx)
  }

  async listPage(path: string, query: ListQuery, ctx: RequestContext): Promise<ListPage> {
    return this.#listRoute(path, ctx).listPage(query, ctx)
  }

  #listRoute(path: string, ctx: RequestContext): Resource {
    const { user, path: p, route } = this.#access.route(path, ctx)
    if (route.idText !== '' || route.resource === this.#topics)
      throw new ResourceError('NOT_FOUND', `${p} is not a resource`)
    this.#access.check(ctx, user, route, 'read', p)
    return route.resource
  }

  async put(
    target: string,
    value: unknown,
    ctx: RequestContext,
    options?: { ifVersion?: number },
  ): Promise<WriteResult> {
    const routed = this.#access.route(target, ctx)
    this.#access.checkPut(ctx, routed)
    const route = routed.route
    return route.resource.put(this.#access.recordId(route, 'put'), value, ctx, onlyIfVersion(options))
  }

  async patch(
    target: string,
    patch: unknown,
    ctx: RequestContext,
    options?: { ifVersion?: number },
  ): Promise<WriteResult> {
    const { user, path, route } = this.#access.route(target, ctx)
    this.#access.check(ctx, user, route, 'update', path)
    const id = this.#access.recordId(route, 'patch')
    return route.resource.patch(id, patch, ctx, onlyIfVersion(options))
  }

  async post(path: string, value: unknown, ctx: RequestContext): Promise<WriteResult> {
    const { user, path: p, route } = this.#access.route(path, ctx)
    if (route.resource === this.#topics) this.#access.check(ctx, user, route, 'insert', p)
    if (route.idText !== '')
      throw new ResourceError('METHOD_NOT_ALLOWED', `post to ${route.resource.path}, not to a record`)
    this.#access.check(ctx, user, route, 'insert', p)
    return route.resource.post(value, ctx)
  }

  async delete(target: string, ctx: RequestContext, options?: { ifVersion?: number }): Promise<boolean> {
    const { user, path, route } = this.#access.route(target, ctx)
    this.#access.check(ctx, user, route, 'delete', path)
    const id = this.#access.recordId(route, 'delete')
    return route.resource.delete(id, ctx, onlyIfVersion(options))
  }

  // ---- messaging ------------------------------------------------------------------------------

  publish(
    topic: string,
    message: PublishMessage,
    ctx: RequestContext,
    options?: PublishOptions,
  ): Promise<PublishResult> {
    try {
      return this.#publish(topic, message, ctx, options)
    } catch (error) {
      return Promise.reject(toResourceError(error))
    }
  }

  publishWith(
    topic: string,
    message: PublishMessage,
    ctx: RequestContext,
    options: PublishOptions | undefined,
    listener: PublishListener,
  ): void {
    const onError = this.#onError
    try {
      // The common durable publish: a plain topic, nothing to commit with it, told without a promise.
      if (options?.atomic === undefined || options.atomic.length === 0) {
        const user = this.#publisher(message, ctx)
        if (this.#router.resolve(topic) === null) {
          this.#assertTopicPublish(topic, ctx, user, options)
          this.#topics.publishWith(topic, message, ctx, listener, onError)
          return
        }
      }
      settleWith(this.#publish(topic, message, ctx, options), listener, onError)
    } catch (error) {
      tellLater(listener, toResourceError(error), onError)
    }
  }

  /** `publish`, throwing what it refuses. */
  #publish(
    topic: string,
    message: PublishMessage,
    ctx: RequestContext,
    options: PublishOptions | undefined,
  ): Promise<PublishResult> {
    const user = this.#publisher(message, ctx)
    // No route object for an unclaimed topic: the hot path of a plain broker allocates nothing here.
    const route = this.#router.resolve(topic)
    if (route !== null) {
      return publishRecord(route, topic, message, ctx, user, options, this.#permissions, this.#normalize)
    }
    this.#assertTopicPublish(topic, ctx, user, options)
    return this.#topics.publishBytes(topic, message, ctx, options?.atomic)
  }

  /** The publishing user, once the runtime is open, the publisher known and the payload within bounds. */
  #publisher(message: PublishMessage, ctx: RequestContext): User {
    if (this.#closed) throw new ResourceError('CLOSED', 'the runtime is closed')
    const user = ctx.user ?? this.#permissions.anonymous
    if (user === null) throw new ResourceError('UNAUTHORIZED', 'authentication required')
    if (message.payload.length > this.#maxPayload) {
      throw new ResourceError(
        'TOO_LARGE',
        `payload of ${message.payload.length} bytes exceeds ${this.#maxPayload}`,
      )
    }
    return user
  }

  /** A topic no table claims: refused when unclaimed topics are, or not a valid name, or not permitted. */
  #assertTopicPublish(
    topic: string,
    ctx: RequestContext,
    user: User,
    options: PublishOptions | undefined,
  ): void {
    if (this.#rejectUnclaimed) throw new ResourceError('NOT_FOUND', `no resource claims topic ${topic}`)
    if (options?.topicChecked !== true) assertTopicName(topic)
    if (!this.#permissions.topicAllowed(user, ctx.clientId, topic, 'publish'))
      this.#permissions.deny(ctx, `publish to ${topic}`)
  }

  mayReceive(topic: string, ctx: RequestContext): boolean {
    if (this.#closed) return false
    const user = ctx.user ?? this.#permissions.anonymous
    if (user === null) return false
    const route = this.#router.resolve(topic)
    if (route === null) return this.#permissions.topicAllowed(user, ctx.clientId, topic, 'subscribe')
    return this.#permissions.tableAllowed(user, route.resource.permissionKeys, 'read')
  }

  subscribe(
    filter: string,
    listener: EventListener,
    options: SubscribeOptions,
    ctx: RequestContext,
  ): Promise<RuntimeSubscription> {
    try {
      return this.#subscribe.subscribe(filter, listener, options, ctx)
    } catch (error) {
      return Promise.reject(toResourceError(error))
    }
  }

  async connect(
    target: string,
    ctx: RequestContext,
    incoming?: AsyncIterable<unknown>,
    options?: ConnectResume,
  ): Promise<AsyncIterable<ResourceEvent>> {
    const query = splitQueryFilter(trimPath(target))
    if (query !== undefined) {
      this.#access.assertOpen()
      const filter = trimPath(target)
      const subscribe = (listener: EventListener, subscribeOptions: SubscribeOptions) =>
        this.#subscribe.subscribeQuery(filter, query, listener, subscribeOptions, ctx)
      return connectQuery(this.#host, filter, ctx, options, subscribe)
    }
    const { user, path, route } = this.#access.route(target, ctx)
    const resource = route.resource
    if (resource === this.#topics) {
      const assertPublish = () => this.#access.assertTopic(ctx, user, path, 'publish')
      return connectTopic(this, this.#host, path, ctx, incoming, options, assertPublish)
    }
    this.#access.check(ctx, user, route, 'read', path)
    const id = route.idText === '' ? undefined : resource.coerceId(route.idText)
    return connectResource(resource, id, ctx, incoming, options, this.#host, this.#scopes, this.#onError)
  }

  encode(event: ResourceEvent, mediaType: string): Uint8Array {
    return this.#events.encode(event, mediaType)
  }

  // ---- state ----------------------------------------------------------------------------------

  state<V = unknown>(name: string): StateStore<V> {
    return this.#states.get(name) as unknown as StateStore<V>
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#unsubscribeFeed()
    this.users.close()
    for (const timer of this.#timers) clearInterval(timer)
    if (this.#ownStore) await this.#store.close()
  }

  /** A QoS 0 message (never stored): subscribers here, and the relay to other nodes. */
  #dispatchTransient(event: RuntimeEvent): void {
    this.dispatchRelayed(event)
    this.#relay?.(event)
  }

  dispatchRelayed(event: RuntimeEvent): void {
    if (this.#registry.size !== 0) this.#registry.dispatch(event)
    // query subscriptions follow a table's messages (plain topics have no query)
    if (this.#queries.size !== 0 && event.path !== '') this.#queries.onMessage(event)
  }

  #onChange(change: ChangeEvent): void {
    if (this.#registry.size === 0 && !this.#queries.watches(change.table)) return
    const event = this.#events.toEvent(change)
    if (event === null) return
    this.#registry.dispatch(event)
    if (this.#queries.size !== 0) this.#queries.onChange(change, event)
  }
}

/** What a resource's put/patch/delete gets of the caller's options: `ifVersion` alone (a fresh object). */
function onlyIfVersion(options: { ifVersion?: number } | undefined): { ifVersion: number } | undefined {
  return options?.ifVersion !== undefined ? { ifVersion: options.ifVersion } : undefined
}
