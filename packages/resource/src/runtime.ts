import { isUtf8 } from 'node:buffer'
import { decode, detect, encode as encodeValue, normalizeMediaType } from '@proj/codec'
import {
  type ChangeEvent,
  type Key,
  type OpenStoreOptions,
  openStore,
  type Table as StorageTable,
  type Store,
  type WriteOptions,
  type WriteTransaction,
} from '@proj/storage'
import {
  matchesFilter,
  parseSharedSubscription,
  validateTopicFilter,
  validateTopicName,
} from '@proj/topic-matcher'
import { type ApplicationSource, importResources, readApplication } from './application.js'
import { ConnectIterator, ConnectScope, ConnectScopes } from './connect-scope.js'
import { ResourceError } from './errors.js'
import { decodeLoose, RuntimeEvent } from './event.js'
import { EventStream } from './event-stream.js'
import { fromStored } from './own-keys.js'
import { type Access, Permissions, type RoleDefinition, type TableAction } from './permissions.js'
import { CommittedPublish } from './publish-result.js'
import { QuerySubscriptions, splitQueryFilter } from './query-subscriptions.js'
import type { TableHandle } from './relationships.js'
import {
  type ConnectOptions,
  RESOLVED_EMPTY,
  Resource,
  type ResourceHost,
  type ResourceInit,
  type ResourceMessage,
} from './resource.js'
import { type Route, Router } from './router.js'
import { parseSchema, type SchemaDefinition, type TableDefinition } from './schema.js'
import { STATE_PREFIX, TableStateStore } from './state-store.js'
import { SubscriptionImpl, SubscriptionRegistry } from './subscriptions.js'
import { storageMeta, Table, tableHandle, toResourceError } from './table.js'
import { TableIndexes } from './table-indexes.js'
import type {
  EventListener,
  EventMeta,
  ListPage,
  ListQuery,
  PublishMessage,
  PublishResult,
  RecordResult,
  RequestContext,
  ResourceEvent,
  Runtime,
  ScramCredential,
  StateStore,
  StateWrite,
  SubscribeOptions,
  Subscription,
  User,
  WriteResult,
} from './types.js'
import type { UserChangeListener } from './user-changes.js'
import { type AuthOptions, Users } from './users.js'

/** Storage table of the built-in topics table (retained messages of topics no table claims). */
export const TOPICS_TABLE = '__topics'

/** What the topics table stores per topic: the publisher's bytes and declared type (or a value). */
export interface TopicRecord {
  payload?: Uint8Array
  contentType?: string
  value?: unknown
  /** MQTT 5 PUBLISH properties of a retained message (user properties, expiry...), sent with it on subscribe. */
  properties?: Record<string, unknown>
  /** The QoS it was published with: a new subscriber receives min(this, granted) (MQTT 5 section 3.8.4). */
  qos?: 0 | 1 | 2
}

/** A resource class as exported from resources.js: constructed once per runtime with a ResourceInit. */
export type ResourceClass = (new (init: ResourceInit) => Resource) & { path?: string }
/** A table class (`tables.Dog`), constructed by the runtime. */
export type TableClass = new (init: ResourceInit) => Table

/** Everything a resources.js default-export function receives. */
export interface ResourceKit {
  Resource: typeof Resource
  Table: typeof Table
  /** One class per @table type, keyed by type name; extend one to customize that table. */
  tables: Record<string, TableClass>
  EventStream: typeof EventStream
  ResourceError: typeof ResourceError
  /** `RuntimeOptions.context` (e.g. the server), for resources that need their host. */
  context: Record<string, unknown>
}

export interface RuntimeOptions {
  /** LMDB folder (default `./data`), unless `store` is given. */
  path?: string
  /** An open store to use (not closed by `runtime.close()`). */
  store?: Store
  /** Application folders, each with schema.graphql, optional resources.js/.mjs and config.json. */
  applications?: string[]
  /** Inline schema.graphql sources (like an application without a folder). */
  schemas?: { source: string; file?: string }[]
  /** Resource classes by export path (like the exports of a resources.js). */
  resources?: Record<string, ResourceClass>
  /** Calls without a user act as the anonymous user (role `anonymousRole`); default false. */
  allowAnonymous?: boolean
  /** Role of the anonymous user (default `anonymous`, built in with full non-admin access). */
  anonymousRole?: string
  /** Role definitions; they replace built-in roles of the same name (`admin`, `user`, `anonymous`). */
  roles?: RoleDefinition[]
  /** Reject publishes/subscriptions to topics that no table claims (NOT_FOUND). Default false. */
  rejectUnclaimedTopics?: boolean
  /** Change-log retention. */
  retention?: OpenStoreOptions['retention']
  nodeId?: number
  /** Commits are not fsynced (tests, benchmarks). */
  noSync?: boolean
  /** Largest payload accepted by publish (TOO_LARGE above it); default unlimited. */
  maxPayloadBytes?: number
  /** Receives errors thrown by listeners and background work (default console.error). */
  onError?: (error: unknown) => void
  /** Passed to resources.js factories as `kit.context`. */
  context?: Record<string, unknown>
  /** Password checking: SCRAM iterations, back-off after failed attempts, verification cache, failure reports. */
  auth?: AuthOptions
  /**
   * Told every transient event (a QoS 0 non-retained message, never stored) this runtime dispatches, so a
   * cluster can carry it to other nodes; they deliver it with `runtime.dispatchRelayed()`.
   */
  relay?: (event: RuntimeEvent) => void
}

/** A Subscription plus `ready`: resolves once current values / replayed events were delivered and it is live. */
export interface RuntimeSubscription extends Subscription {
  readonly ready: Promise<void>
  /** Change-log cursor when the subscription was made (a durable session may store it as its position). */
  readonly cursor: number
}

/** The Runtime of types.ts plus runtime-specific members. */
export interface ResourceRuntime extends Runtime {
  subscribe(
    filter: string,
    listener: EventListener,
    options: SubscribeOptions,
    ctx: RequestContext,
  ): Promise<RuntimeSubscription>
  readonly store: Store
  readonly users: Users
  scramCredentials(username: string): Promise<ScramCredential | null>
  onUserChange(listener: UserChangeListener): () => void
  /** Resolves a REST path or topic: which resource and which id, or null for an unclaimed topic. */
  resolve(target: string): { path: string; id: Key | undefined; resource: Resource } | null
  /** Every routable resource by export path. */
  resources(): Map<string, Resource>
  /** Live subscriptions (every transport, every connect()); for monitoring and leak tests. */
  readonly subscriptionCount: number
  /** True when `user` passes every permission check: its own flag or a super-user role. */
  isSuperUser(user: User | null): boolean
  /** The role definitions in force (built-in roles, replaced or joined by configured ones). */
  roles(): RoleDefinition[]
  /** New configured roles (applications' roles stay) and anonymous settings, for later checks (SIGHUP). */
  reconfigure(options: Pick<RuntimeOptions, 'roles' | 'allowAnonymous' | 'anonymousRole'>): void
  /** The table classes by type name (what resources.js receives as `tables`). */
  readonly tables: Record<string, TableClass>
  readonly schema: SchemaDefinition
  /** Delivers a transient event relayed from another node to this node's subscribers (not relayed again). */
  dispatchRelayed(event: RuntimeEvent): void
}

const EMPTY = new Uint8Array(0)

/**
 * Opens the resource runtime: the storage, the applications' tables and resources, users and roles.
 *
 * @example
 * const runtime = await openRuntime({ path: './data', applications: ['./app'], allowAnonymous: true })
 * const ctx = { user: null }
 * await runtime.subscribe('Dog/#', (event) => console.log(event.type, event.topic), {}, ctx)
 * await runtime.put('Dog/1', { name: 'Rex' }, ctx)
 */
export async function openRuntime(options: RuntimeOptions = {}): Promise<ResourceRuntime> {
  const apps: ApplicationSource[] = []
  for (const dir of options.applications ?? []) apps.push(await readApplication(dir))
  const schemas: { source: string; file: string }[] = []
  for (const app of apps) if (app.schema) schemas.push(app.schema)
  for (const [i, s] of (options.schemas ?? []).entries())
    schemas.push({ source: s.source, file: s.file ?? `schema-${i}.graphql` })
  const schema = mergeSchemas(schemas.map((s) => parseSchema(s.source, s.file)))
  const modules: Record<string, unknown>[] = []
  for (const app of apps) if (app.resourcesFile) modules.push(await importResources(app.resourcesFile))
  const roles = [...apps.flatMap((a) => a.config.roles ?? []), ...(options.roles ?? [])]

  const ownStore = options.store === undefined
  const store =
    options.store ??
    (await openStore({
      path: options.path ?? './data',
      ...(options.nodeId !== undefined ? { nodeId: options.nodeId } : {}),
      ...(options.retention !== undefined ? { retention: options.retention } : {}),
      ...(options.noSync !== undefined ? { noSync: options.noSync } : {}),
      ...(options.onError !== undefined ? { onError: options.onError } : {}),
    }))
  try {
    const runtime = new RuntimeImpl(store, ownStore, schema, roles, options)
    await runtime.register(modules, options.resources ?? {}, options.context ?? {})
    return runtime
  } catch (error) {
    if (ownStore) await store.close()
    throw error
  }
}

function mergeSchemas(schemas: SchemaDefinition[]): SchemaDefinition {
  const merged: SchemaDefinition = { types: new Map(), enums: new Map(), tables: [] }
  const paths = new Map<string, TableDefinition>()
  const names = new Map<string, TableDefinition>()
  for (const schema of schemas) {
    for (const [name, type] of schema.types) {
      const other = merged.types.get(name)
      if (other) {
        throw new ResourceError(
          'SCHEMA_INVALID',
          `${type.file}:${type.line}:${type.column}: type ${name} is also defined in ${other.file}:${other.line}:${other.column}`,
        )
      }
      merged.types.set(name, type)
    }
    for (const [name, values] of schema.enums) merged.enums.set(name, values)
    for (const table of schema.tables) {
      const where = `${table.file}:${table.line}:${table.column}`
      if (table.exportPath && paths.has(table.exportPath)) {
        throw new ResourceError('SCHEMA_INVALID', `${where}: export path ${table.exportPath} is used twice`)
      }
      if (names.has(table.storageName))
        throw new ResourceError('SCHEMA_INVALID', `${where}: table ${table.storageName} is declared twice`)
      if (table.exportPath) paths.set(table.exportPath, table)
      names.set(table.storageName, table)
      merged.tables.push(table)
    }
  }
  return merged
}

function isResourceClass(value: unknown): value is ResourceClass {
  if (typeof value !== 'function') return false
  const proto = (value as { prototype?: unknown }).prototype
  if (proto instanceof Resource) return true
  // A Resource subclass from another copy of this package: duck-typed.
  return (
    typeof proto === 'object' &&
    proto !== null &&
    typeof (proto as Resource).get === 'function' &&
    typeof (proto as Resource).connect === 'function' &&
    typeof (proto as Resource).publish === 'function'
  )
}

function trimPath(target: string): string {
  let start = 0
  while (target.charCodeAt(start) === 47 /* / */) start++
  return start === 0 ? target : target.slice(start)
}

function isEventLike(value: unknown): value is ResourceEvent {
  if (value instanceof RuntimeEvent) return true
  if (value === null || typeof value !== 'object') return false
  const v = value as Partial<ResourceEvent>
  return typeof v.type === 'string' && typeof v.topic === 'string' && typeof v.timestamp === 'number'
}

interface Scope {
  targets: { resource: Resource; idFilter: string }[]
  unclaimed: boolean
}

class RuntimeImpl implements ResourceRuntime {
  readonly store: Store
  readonly schema: SchemaDefinition
  readonly users: Users
  readonly tables: Record<string, TableClass> = {}
  readonly #ownStore: boolean
  readonly #topics: StorageTable<TopicRecord>
  readonly #router = new Router<Resource>()
  readonly #registry: SubscriptionRegistry
  readonly #queries: QuerySubscriptions
  readonly #permissions: Permissions
  readonly #byStorageName = new Map<string, Resource>()
  readonly #states = new Map<string, TableStateStore<unknown>>()
  /**
   * The RuntimeEvent made for a ChangeEvent, kept on the change itself under this runtime's own symbol:
   * one WeakMap entry per committed write made every young-generation GC walk an ephemeron table.
   */
  readonly #eventSlot: symbol = Symbol('runtimeEvent')
  readonly #originals = new WeakMap<object, { payload: Uint8Array; contentType: string | undefined }>()
  readonly #plainEncodings = new WeakMap<object, Map<string, Uint8Array>>()
  readonly #mediaTypes = new Map<string, string | null>()
  readonly #rejectUnclaimed: boolean
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

  constructor(
    store: Store,
    ownStore: boolean,
    schema: SchemaDefinition,
    roles: RoleDefinition[],
    options: RuntimeOptions,
  ) {
    this.store = store
    this.#ownStore = ownStore
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
    this.#registry = new SubscriptionRegistry((error) => this.#onError(error))
    this.#queries = new QuerySubscriptions({
      store,
      toEvent: (change) => this.#toEvent(change),
      onError: (error) => this.#onError(error),
    })
    this.#topics = store.table<TopicRecord>(TOPICS_TABLE)
    this.users = new Users(
      this.state('__users') as TableStateStore<never>,
      this.state('__system') as TableStateStore<unknown>,
      this.#permissions,
      options.auth,
      (error) => this.#onError(error),
    )
    this.#host = this.#createHost()
    this.#unsubscribeFeed = store.onChange((change) => this.#onChange(change))
  }

  /** Creates table classes and resources and registers their export paths. */
  async register(
    modules: Record<string, unknown>[],
    extra: Record<string, ResourceClass>,
    context: Record<string, unknown>,
  ): Promise<void> {
    const host = this.#host
    const schema = this.schema
    const tableByName = new Map<string, TableDefinition>()
    const catalog = new Map<string, TableHandle>()
    for (const definition of schema.tables) {
      // Change events carry the record each write replaced: query subscriptions' enter and leave.
      const storageTable = this.store.table(definition.storageName, { previous: true })
      tableByName.set(definition.name, definition)
      const indexes = new TableIndexes(this.store, definition)
      // Before any write: index the records of a table that gained @indexed attributes.
      await indexes.prepare(storageTable)
      catalog.set(definition.name, tableHandle(definition, storageTable, indexes))
      const cls = class extends Table {
        constructor(init: ResourceInit) {
          super({ ...init, definition, schema, table: storageTable, indexes, catalog })
        }
      }
      Object.defineProperty(cls, 'name', { value: definition.name })
      this.tables[definition.name] = cls
    }
    const classes = new Map<string, { cls: ResourceClass; name: string; definition?: TableDefinition }>()
    for (const definition of schema.tables) {
      if (definition.exportPath) {
        classes.set(definition.exportPath, {
          cls: this.tables[definition.name]!,
          name: definition.name,
          definition,
        })
      }
    }
    const kit: ResourceKit = { Resource, Table, tables: this.tables, EventStream, ResourceError, context }
    const exported: [string, unknown][] = []
    for (const mod of modules) {
      let exports: Record<string, unknown> = mod
      const factory = mod.default
      if (typeof factory === 'function' && !isResourceClass(factory)) {
        exports = ((await (factory as (kit: ResourceKit) => unknown)(kit)) ?? {}) as Record<string, unknown>
      }
      for (const [name, value] of Object.entries(exports))
        if (name !== 'default') exported.push([name, value])
    }
    exported.push(...Object.entries(extra))
    for (const [name, value] of exported) {
      if (!isResourceClass(value)) continue
      const definition = tableByName.get(name) ?? schema.tables.find((t) => t.exportPath === name)
      const path = (definition?.exportPath ?? value.path ?? name).replace(/^\/+|\/+$/g, '')
      classes.set(path, { cls: value, name: definition?.name ?? name, ...(definition ? { definition } : {}) })
    }
    for (const [path, { cls, name }] of classes) {
      const resource = new cls({ host, path, name })
      this.#router.add(resource)
      if (resource instanceof Table) {
        this.#byStorageName.set(resource.table.name, resource)
        if (resource.definition.expiration) this.#sweepExpired(resource)
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

  #route(target: string, ctx: RequestContext): { user: User; path: string; route: Route<Resource> | null } {
    this.#assertOpen()
    const user = this.#permissions.user(ctx)
    const path = trimPath(target)
    const route = this.#router.resolve(path)
    if (!route && this.#rejectUnclaimed) throw new ResourceError('NOT_FOUND', `no resource at ${path}`)
    return { user, path, route }
  }

  #recordId(route: Route<Resource>, method: string): Key {
    if (route.idText === '')
      throw new ResourceError('INVALID', `${method} ${route.resource.path} needs a record id`)
    return route.resource.coerceId(route.idText)
  }

  #assert(ctx: RequestContext, user: User, resource: Resource, action: TableAction, what: string): void {
    this.#permissions.assertTable(ctx, user, resource.permissionKeys, action, what)
  }

  #assertTopic(ctx: RequestContext, user: User, topic: string, action: 'publish' | 'subscribe'): void {
    if (!this.#permissions.topicAllowed(user, ctx.clientId, topic, action))
      this.#permissions.deny(ctx, `${action} ${topic}`)
  }

  // ---- REST-style -----------------------------------------------------------------------------

  async get(target: string, ctx: RequestContext): Promise<RecordResult | undefined> {
    const { user, path, route } = this.#route(target, ctx)
    if (!route) {
      this.#assertTopic(ctx, user, path, 'subscribe')
      const entry = this.#topics.getEntry(path)
      if (!entry) return undefined
      const value = topicValue(entry.value)
      const result: RecordResult = { id: path, value, version: entry.version }
      const contentType =
        entry.value.contentType ?? (value instanceof Uint8Array ? bytesType(value) : undefined)
      if (contentType !== undefined) result.contentType = contentType
      return result
    }
    const resource = route.resource
    this.#assert(ctx, user, resource, 'read', path)
    // `Dog/123.name`: one declared attribute of a record.
    const property = resource instanceof Table ? resource.propertyTarget(route.idText) : undefined
    if (property && resource instanceof Table) {
      const record = await resource.get(property.id, ctx)
      if (!record) return undefined
      return { ...record, value: resource.property(record.value, property.attribute, ctx) ?? null }
    }
    const id = this.#recordId(route, 'get')
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
    const { user, path: p, route } = this.#route(path, ctx)
    if (route?.idText !== '') throw new ResourceError('NOT_FOUND', `${p} is not a resource`)
    this.#assert(ctx, user, route.resource, 'read', p)
    return route.resource
  }

  async put(
    target: string,
    value: unknown,
    ctx: RequestContext,
    options?: { ifVersion?: number },
  ): Promise<WriteResult> {
    const { user, path, route } = this.#route(target, ctx)
    if (!route) {
      this.#assertTopic(ctx, user, path, 'publish')
      this.#validTopic(path)
      const record: TopicRecord = {
        payload: value instanceof Uint8Array ? value : encodeValue(value, 'application/json'),
      }
      const created = this.#topics.get(path) === undefined
      const change = await this.#topics
        .put(path, record, {
          ...writeOptions(ctx),
          ...(options?.ifVersion !== undefined ? { ifVersion: options.ifVersion } : {}),
        })
        .catch(rethrow)
      return { id: path, version: change.timestamp, created }
    }
    const resource = route.resource
    const exists = () => resource.has(this.#recordId(route, 'put'))
    this.#permissions.assertWrite(ctx, user, resource.permissionKeys, exists, path)
    const id = this.#recordId(route, 'put')
    return resource.put(
      id,
      value,
      ctx,
      options?.ifVersion !== undefined ? { ifVersion: options.ifVersion } : undefined,
    )
  }

  async patch(
    target: string,
    patch: unknown,
    ctx: RequestContext,
    options?: { ifVersion?: number },
  ): Promise<WriteResult> {
    const { user, path, route } = this.#route(target, ctx)
    if (!route) throw new ResourceError('METHOD_NOT_ALLOWED', `${path} is a topic, which cannot be patched`)
    this.#assert(ctx, user, route.resource, 'update', path)
    const id = this.#recordId(route, 'patch')
    return route.resource.patch(
      id,
      patch,
      ctx,
      options?.ifVersion !== undefined ? { ifVersion: options.ifVersion } : undefined,
    )
  }

  async post(path: string, value: unknown, ctx: RequestContext): Promise<WriteResult> {
    const { user, path: p, route } = this.#route(path, ctx)
    if (!route) throw new ResourceError('METHOD_NOT_ALLOWED', `${p} is not a resource; use put`)
    if (route.idText !== '')
      throw new ResourceError('METHOD_NOT_ALLOWED', `post to ${route.resource.path}, not to a record`)
    this.#assert(ctx, user, route.resource, 'insert', p)
    return route.resource.post(value, ctx)
  }

  async delete(target: string, ctx: RequestContext, options?: { ifVersion?: number }): Promise<boolean> {
    const { user, path, route } = this.#route(target, ctx)
    if (!route) {
      this.#assertTopic(ctx, user, path, 'publish')
      if (options?.ifVersion === undefined && this.#topics.get(path) === undefined) return false
      const change = await this.#topics
        .delete(path, {
          ...writeOptions(ctx),
          ...(options?.ifVersion !== undefined ? { ifVersion: options.ifVersion } : {}),
        })
        .catch(rethrow)
      return change !== undefined
    }
    this.#assert(ctx, user, route.resource, 'delete', path)
    const id = this.#recordId(route, 'delete')
    return route.resource.delete(
      id,
      ctx,
      options?.ifVersion !== undefined ? { ifVersion: options.ifVersion } : undefined,
    )
  }

  // ---- messaging ------------------------------------------------------------------------------

  publish(
    topic: string,
    message: PublishMessage,
    ctx: RequestContext,
    options?: { atomic?: StateWrite[] },
  ): Promise<PublishResult> {
    try {
      if (this.#closed) throw new ResourceError('CLOSED', 'the runtime is closed')
      const user = ctx.user ?? this.#permissions.anonymous
      if (user === null) throw new ResourceError('UNAUTHORIZED', 'authentication required')
      if (message.payload.length > this.#maxPayload) {
        throw new ResourceError(
          'TOO_LARGE',
          `payload of ${message.payload.length} bytes exceeds ${this.#maxPayload}`,
        )
      }
      const route = this.#router.resolve(topic)
      if (route === null) return this.#publishTopic(topic, message, ctx, user, options?.atomic)
      return this.#publishRoute(route, topic, message, ctx, user, options?.atomic)
    } catch (error) {
      return Promise.reject(toResourceError(error))
    }
  }

  #validTopic(topic: string): void {
    const valid = validateTopicName(topic)
    if (!valid.ok)
      throw new ResourceError('INVALID', `invalid topic ${JSON.stringify(topic)}: ${valid.reason}`)
  }

  #publishTopic(
    topic: string,
    message: PublishMessage,
    ctx: RequestContext,
    user: User,
    atomic: StateWrite[] | undefined,
  ): Promise<PublishResult> {
    if (this.#rejectUnclaimed) throw new ResourceError('NOT_FOUND', `no resource claims topic ${topic}`)
    this.#validTopic(topic)
    if (!this.#permissions.topicAllowed(user, ctx.clientId, topic, 'publish'))
      this.#permissions.deny(ctx, `publish to ${topic}`)
    const retain = message.retain
    if (!retain && message.qos === 0 && (atomic === undefined || atomic.length === 0)) {
      if (this.#registry.size !== 0 || this.#relay !== undefined) {
        const event = new RuntimeEvent(
          'message',
          topic,
          '',
          topic,
          this.store.clock.now(),
          0,
          ctx.user?.username,
          false,
          message.meta,
        )
        event.origin = ctx.clientId
        this.#dispatchTransient(event.setPayload(message.payload, message.contentType))
      }
      return RESOLVED_EMPTY
    }
    const record: TopicRecord =
      message.contentType !== undefined
        ? { payload: message.payload, contentType: message.contentType }
        : { payload: message.payload }
    // A retained message keeps its properties (MQTT 5 section 3.3.1.3) and its QoS for later subscribers.
    if (retain) {
      if (message.meta?.properties !== undefined) record.properties = message.meta.properties
      record.qos = message.qos
    }
    const write: WriteOptions = { meta: storageMeta(message, ctx) }
    if (ctx.user) write.user = ctx.user.username
    const topics = this.#topics
    const single = atomic === undefined || atomic.length === 0
    if (retain && message.payload.length === 0) {
      // not skipped when the topic looks empty: a retained put just before it may still be queued
      if (single) return topics.delete(topic, write).then(this.#toResult, rethrow)
      return this.#commitOne((txn) => txn.delete(topics, topic, write), atomic, TOPICS_TABLE)
    }
    // One write without state writes: a plain storage write (no transaction group), same batching.
    if (single)
      return (retain ? topics.put(topic, record, write) : topics.message(topic, record, write)).then(
        this.#toResult,
        rethrow,
      )
    if (retain) return this.#commitOne((txn) => txn.put(topics, topic, record, write), atomic, TOPICS_TABLE)
    return this.#commitOne((txn) => txn.message(topics, topic, record, write), atomic, TOPICS_TABLE)
  }

  /** A committed write's PublishResult; its event is built only if someone reads it. */
  readonly #toResult = (change: ChangeEvent | undefined): PublishResult =>
    change === undefined ? {} : new CommittedPublish(change, this.#toEventFn)

  readonly #toEventFn = (change: ChangeEvent): RuntimeEvent | null => this.#toEvent(change)

  async #commitOne(
    write: (txn: WriteTransaction) => void,
    atomic: readonly StateWrite[] | undefined,
    table: string,
  ): Promise<PublishResult> {
    let changes: ChangeEvent[]
    try {
      changes = await this.#commit(write, atomic)
    } catch (error) {
      throw toResourceError(error)
    }
    return this.#toResult(changes.find((c) => c.table === table))
  }

  #commit(
    write: (txn: WriteTransaction) => void,
    atomic: readonly StateWrite[] | undefined,
  ): Promise<ChangeEvent[]> {
    if (atomic === undefined || atomic.length === 0) return this.store.transaction(write)
    const tables = atomic.map((w) => this.#stateStore(w.store).table)
    return this.store.transaction((txn) => {
      write(txn)
      for (let i = 0; i < atomic.length; i++) {
        const w = atomic[i]!
        if (w.value === undefined) txn.delete(tables[i]!, w.key)
        else txn.put(tables[i]!, w.key, w.value)
      }
    })
  }

  #publishRoute(
    route: Route<Resource>,
    topic: string,
    message: PublishMessage,
    ctx: RequestContext,
    user: User,
    atomic: StateWrite[] | undefined,
  ): Promise<PublishResult> {
    const resource = route.resource
    if (route.idText === '')
      throw new ResourceError('INVALID', `topic ${topic} names ${resource.path}, not a record`)
    this.#validTopic(topic)
    const payload = message.payload
    const permissions = this.#permissions
    // Permission first: nothing about the record (not even its id's type) is looked at before it.
    if (message.retain && payload.length !== 0) {
      const exists = () => resource.has(resource.coerceId(route.idText))
      permissions.assertWrite(ctx, user, resource.permissionKeys, exists, topic)
    } else {
      const action: TableAction = message.retain ? 'delete' : 'publish'
      if (!permissions.tableAllowed(user, resource.permissionKeys, action))
        permissions.deny(ctx, `${action} ${topic}`)
    }
    const id = resource.coerceId(route.idText)
    const value =
      message.retain && payload.length === 0
        ? undefined
        : this.#decodeFor(resource, payload, message.contentType)
    const msg: ResourceMessage = { value, payload, retain: message.retain, qos: message.qos }
    if (message.contentType !== undefined) msg.contentType = message.contentType
    if (message.meta !== undefined) msg.meta = message.meta
    return resource.publish(id, msg, ctx, atomic ? { atomic } : undefined).catch(rethrow)
  }

  mayReceive(topic: string, ctx: RequestContext): boolean {
    if (this.#closed) return false
    const user = ctx.user ?? this.#permissions.anonymous
    if (user === null) return false
    const route = this.#router.resolve(topic)
    if (route === null) return this.#permissions.topicAllowed(user, ctx.clientId, topic, 'subscribe')
    return this.#permissions.tableAllowed(user, route.resource.permissionKeys, 'read')
  }

  /** Content negotiation on publish (DESIGN.md): declared type, else JSON if it parses, else raw bytes. */
  #decodeFor(resource: Resource, payload: Uint8Array, contentType: string | undefined): unknown {
    if (contentType === undefined) return detect(payload).value
    if (this.#normalize(contentType) === null) {
      if (resource instanceof Table && resource.definition.attributes.length > 0) {
        throw new ResourceError('UNSUPPORTED_MEDIA_TYPE', `cannot decode ${contentType} for ${resource.path}`)
      }
      return payload
    }
    try {
      return decode(payload, contentType)
    } catch (error) {
      throw toResourceError(error)
    }
  }

  #normalize(mediaType: string): string | null {
    let normalized = this.#mediaTypes.get(mediaType)
    if (normalized === undefined) {
      normalized = normalizeMediaType(mediaType) ?? null
      if (this.#mediaTypes.size > 1000) this.#mediaTypes.clear()
      this.#mediaTypes.set(mediaType, normalized)
    }
    return normalized
  }

  subscribe(
    filter: string,
    listener: EventListener,
    options: SubscribeOptions,
    ctx: RequestContext,
  ): Promise<RuntimeSubscription> {
    try {
      this.#assertOpen()
      this.#permissions.user(ctx)
      const query = splitQueryFilter(filter)
      if (query !== undefined)
        return Promise.resolve(this.#subscribeQuery(filter, query, listener, options, ctx))
      const valid = validateTopicFilter(filter)
      if (!valid.ok)
        throw new ResourceError('INVALID', `invalid topic filter ${JSON.stringify(filter)}: ${valid.reason}`)
      const shared = parseSharedSubscription(filter)
      const inner = shared ? shared.filter : filter
      // A resource that overrides subscribe() gets subscriptions that name it literally.
      const route =
        inner.includes('+') || inner.includes('#') ? this.#literalRoute(inner) : this.#router.resolve(inner)
      if (
        !shared &&
        route &&
        route.idText !== '' &&
        route.resource.subscribe !== Resource.prototype.subscribe
      ) {
        return route.resource.subscribe(route.idText, listener, options, ctx).then(withReady)
      }
      return this.#subscribe(filter, listener, options, ctx)
    } catch (error) {
      return Promise.reject(toResourceError(error))
    }
  }

  /** `Dog/?breed=Lab`: a subscription to the records of a table that match a query. */
  #subscribeQuery(
    filter: string,
    query: { path: string; query: string },
    listener: EventListener,
    options: SubscribeOptions,
    ctx: RequestContext,
  ): RuntimeSubscription {
    const user = this.#permissions.user(ctx)
    if (filter.startsWith('$share/'))
      throw new ResourceError('INVALID', `a query cannot be a shared subscription: ${filter}`)
    const route = this.#router.resolve(query.path)
    const resource = route?.resource
    if (!(resource instanceof Table) || route!.idText !== '')
      throw new ResourceError('NOT_FOUND', `no table at ${query.path} to query`)
    this.#assert(ctx, user, resource, 'read', query.path)
    const subscription = this.#queries.subscribe(filter, query.query, resource, listener, options, ctx)
    this.#scopes.track(subscription)
    return subscription
  }

  /** The route of a wildcard filter's literal prefix when it lies inside one resource (`Dog/a/#`). */
  #literalRoute(filter: string): Route<Resource> | null {
    const segments = filter.split('/')
    const firstWild = segments.findIndex((s) => s === '+' || s === '#')
    if (firstWild <= 0) return null
    const route = this.#router.resolve(segments.slice(0, firstWild).join('/'))
    if (!route) return null
    const literalId = route.idText
    return {
      resource: route.resource,
      idText: [literalId, ...segments.slice(firstWild)].filter((s) => s !== '').join('/'),
    }
  }

  /** The generic subscription: trie entry, permission check, initial (retained / replayed) events. */
  #subscribe(
    filter: string,
    listener: EventListener,
    options: SubscribeOptions,
    ctx: RequestContext,
  ): Promise<RuntimeSubscription> {
    this.#assertOpen()
    const user = this.#permissions.user(ctx)
    const valid = validateTopicFilter(filter)
    if (!valid.ok)
      throw new ResourceError('INVALID', `invalid topic filter ${JSON.stringify(filter)}: ${valid.reason}`)
    const shared = parseSharedSubscription(filter)
    const canonical = this.#canonicalFilter(shared ? shared.filter : filter)
    const scope = this.#scope(canonical)
    if (scope.targets.length === 0 && !scope.unclaimed) {
      throw new ResourceError('NOT_FOUND', `no resource matches ${filter}`)
    }
    const check = this.#subscribeCheck(ctx, user, canonical, scope)
    const subscription = new SubscriptionImpl(
      this.#registry,
      this.#registry.owner(listener),
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
    subscription.cursor = this.store.log.lastCursor
    // Shared subscriptions get no retained messages [MQTT-4.8.2-?]; only a resume replays.
    const retained = options.retained !== false && !shared
    const after = options.after
    if (retained || after !== undefined) {
      subscription.pending = []
      this.#registry.add(subscription)
      subscription.ready = new Promise((resolve) => {
        // After the caller got its Subscription (and, for MQTT, sent SUBACK): current values, replay, then live.
        setImmediate(() => {
          try {
            if (!subscription.closed && !this.#closed) this.#initial(subscription, scope, retained, after)
          } catch (error) {
            this.#onError(error)
          } finally {
            subscription.flush()
            resolve()
          }
        })
      })
    } else {
      this.#registry.add(subscription)
    }
    // Inside a custom connect(): closed with its connection.
    this.#scopes.track(subscription)
    return Promise.resolve(subscription)
  }

  /** A filter whose first segment matches an export path only case-insensitively uses the export path. */
  #canonicalFilter(filter: string): string {
    const segments = filter.split('/')
    const firstWild = segments.findIndex((s) => s === '+' || s === '#')
    const literal = firstWild === -1 ? filter : segments.slice(0, firstWild).join('/')
    if (literal === '' || filter.startsWith('$')) return filter
    const route = this.#router.resolve(literal)
    if (!route) return filter
    const path = route.resource.path
    if (literal.startsWith(path) && (literal.length === path.length || literal[path.length] === '/'))
      return filter
    const consumed = literal.length - route.idText.length - (route.idText === '' ? 0 : 1)
    return path + filter.slice(consumed)
  }

  #scope(filter: string): Scope {
    const segments = filter.split('/')
    const targets: Scope['targets'] = []
    if (!filter.startsWith('$')) {
      for (const resource of this.#router.resources()) {
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
    let unclaimed = !this.#rejectUnclaimed
    if (unclaimed) {
      const firstWild = segments.findIndex((s) => s === '+' || s === '#')
      if (firstWild === -1) unclaimed = this.#router.resolve(filter) === null
      else if (firstWild > 0)
        unclaimed = this.#router.resolve(segments.slice(0, firstWild).join('/')) === null
    }
    return { targets, unclaimed }
  }

  #subscribeCheck(
    ctx: RequestContext,
    user: User,
    filter: string,
    scope: Scope,
  ): ((event: RuntimeEvent) => boolean) | null {
    const permissions = this.#permissions
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

  /** Current values (retained) and the log replay after a cursor, then the subscription goes live. */
  #initial(subscription: SubscriptionImpl, scope: Scope, retained: boolean, after: number | undefined): void {
    const filter = subscription.trieFilter
    const deliverRetained = () => {
      // The visible cursor, not the durable one: a commit still syncing is in the snapshot read below,
      // so its event (dispatched after the sync) must be skipped, not delivered after that state.
      const cursor = (subscription.snapshotCursor = this.store.log.visibleCursor)
      // One event is held back, so the last current value can carry the cursor to resume after.
      let held: RuntimeEvent | undefined
      const hold = (event: RuntimeEvent) => {
        if (subscription.check !== null && !subscription.check(event)) return
        if (held !== undefined) subscription.deliver(held)
        held = event
      }
      for (const { resource, idFilter } of scope.targets) {
        for (const event of resource.snapshot(idFilter, filter)) {
          if (subscription.closed) return
          hold(event)
        }
      }
      if (scope.unclaimed) {
        for (const event of this.#topicSnapshot(filter)) {
          if (subscription.closed) return
          hold(event)
        }
      }
      if (held !== undefined && !subscription.closed) {
        held.resumeCursor = cursor
        subscription.deliver(held)
      }
    }
    if (retained) deliverRetained()
    if (after === undefined) return
    let changes: Iterable<ChangeEvent>
    const tables = scope.unclaimed
      ? undefined
      : scope.targets.map((t) => (t.resource instanceof Table ? t.resource.table.name : TOPICS_TABLE))
    const read = (from: number) =>
      this.store.log.readSince(tables ? { after: from, tables } : { after: from })
    try {
      changes = read(after)
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'STORAGE_LOG_TRUNCATED') throw error
      // The session fell behind retention: current values stand in for what was dropped.
      if (!retained) deliverRetained()
      changes = read(Math.max(0, this.store.log.firstCursor - 1))
    }
    let last = after
    for (const change of changes) {
      last = change.cursor
      if (subscription.closed) return
      const event = this.#toEvent(change)
      if (event === null || !matchesFilter(filter, event.topic) || !subscription.accepts(event)) continue
      subscription.deliver(event)
    }
    subscription.minCursor = last
  }

  *#topicSnapshot(filter: string): Iterable<RuntimeEvent> {
    const segments = filter.split('/')
    const firstWild = segments.findIndex((s) => s === '+' || s === '#')
    if (firstWild === -1) {
      const entry = this.#topics.getEntry(filter)
      if (entry) yield this.#topicEvent(filter, entry.value, entry.version)
      return
    }
    const prefix =
      segments.slice(0, firstWild).join('/') + (firstWild > 0 && segments[firstWild] === '+' ? '/' : '')
    for (const entry of this.#topics.entries(prefix ? { prefix } : undefined)) {
      const topic = String(entry.id)
      if (!matchesFilter(filter, topic) || this.#router.resolve(topic) !== null) continue
      yield this.#topicEvent(topic, entry.value, entry.version)
    }
  }

  #topicEvent(topic: string, record: TopicRecord, version: number): RuntimeEvent {
    let meta: EventMeta | undefined
    if (record.properties !== undefined || record.qos !== undefined) {
      meta = {}
      if (record.properties !== undefined) meta.properties = record.properties
      if (record.qos !== undefined) meta.qos = record.qos
    }
    const event = new RuntimeEvent('put', topic, '', topic, version, 0, undefined, true, meta)
    if (record.payload) event.setPayload(record.payload, record.contentType)
    else event.value = record.value
    return event
  }

  async connect(
    target: string,
    ctx: RequestContext,
    incoming?: AsyncIterable<unknown>,
    options?: { after?: number },
  ): Promise<AsyncIterable<ResourceEvent>> {
    const query = splitQueryFilter(trimPath(target))
    if (query !== undefined) return this.#connectQuery(trimPath(target), query, ctx, options)
    const { user, path, route } = this.#route(target, ctx)
    if (!route) return this.#connectTopic(path, ctx, user, incoming, options)
    const resource = route.resource
    this.#assert(ctx, user, resource, 'read', path)
    const id = route.idText === '' ? undefined : resource.coerceId(route.idText)
    // Everything connect() opens (and, for a generator, everything its body opens later) belongs to
    // this connection's scope, so closing the connection can close it without waiting for an event.
    const scope = new ConnectScope()
    const connectOptions: ConnectOptions = { signal: scope.signal }
    if (options?.after !== undefined) connectOptions.after = options.after
    let result: AsyncIterable<unknown>
    try {
      result = await this.#scopes.run(scope, () =>
        resource.connect(id, incoming ? scope.incoming(incoming) : undefined, ctx, connectOptions),
      )
    } catch (error) {
      scope.close()
      throw error
    }
    if (result instanceof EventStream) {
      result.once('close', () => scope.close())
      return result
    }
    const topic = id === undefined ? resource.path : resource.topicFor(id)
    const toEvent = (value: unknown): ResourceEvent => {
      if (isEventLike(value)) return value
      const event = this.#host.createEvent('message', resource, id ?? '', topic, ctx)
      event.value = value
      return event
    }
    return new ConnectIterator(result, toEvent, scope, this.#scopes, this.#onError)
  }

  /** WebSocket / SSE on `Dog/?query`: the query subscription's events (incoming messages are not read). */
  #connectQuery(
    filter: string,
    query: { path: string; query: string },
    ctx: RequestContext,
    options: { after?: number } | undefined,
  ): Promise<AsyncIterable<ResourceEvent>> {
    this.#assertOpen()
    const stream = new EventStream<ResourceEvent>((value) => {
      const event = this.#host.createEvent('message', null, filter, filter, ctx)
      event.value = value
      return event
    })
    const subscription = this.#subscribeQuery(
      filter,
      query,
      (event) => stream.push(event),
      options?.after === undefined
        ? { retained: true, qos: 1 }
        : { retained: false, after: options.after, qos: 1 },
      ctx,
    )
    stream.once('close', () => subscription.close())
    return Promise.resolve(stream)
  }

  async #connectTopic(
    topic: string,
    ctx: RequestContext,
    user: User,
    incoming: AsyncIterable<unknown> | undefined,
    options: { after?: number } | undefined,
  ): Promise<AsyncIterable<ResourceEvent>> {
    const stream = new EventStream<ResourceEvent>((value) => {
      const event = this.#host.createEvent('message', null, topic, topic, ctx)
      event.value = value
      return event
    })
    const subscription = await this.subscribe(
      topic,
      (event) => stream.push(event),
      options?.after === undefined
        ? { retained: true, qos: 1 }
        : { retained: false, after: options.after, qos: 1 },
      ctx,
    )
    stream.once('close', () => subscription.close())
    if (incoming && !topic.includes('+') && !topic.includes('#')) {
      this.#assertTopic(ctx, user, topic, 'publish')
      void (async () => {
        try {
          for await (const value of incoming) {
            if (stream.closed) break
            await this.#host.publishValue(topic, value, ctx)
          }
        } catch (error) {
          stream.emit('incomingError', error)
        }
      })()
    }
    return stream
  }

  encode(event: ResourceEvent, mediaType: string): Uint8Array {
    if (event.type === 'delete') return EMPTY
    if (event instanceof RuntimeEvent) {
      const cached = event.cached(mediaType)
      if (cached !== undefined) return cached
      const bytes = this.#encode(event, mediaType)
      event.cache(mediaType, bytes)
      return bytes
    }
    let cache = this.#plainEncodings.get(event)
    const hit = cache?.get(mediaType)
    if (hit) return hit
    const bytes = this.#encode(event, mediaType)
    if (!cache) this.#plainEncodings.set(event, (cache = new Map()))
    cache.set(mediaType, bytes)
    return bytes
  }

  #encode(event: ResourceEvent, mediaType: string): Uint8Array {
    const payload = (event as RuntimeEvent).payload
    if (payload !== undefined) {
      const declared = event.contentType
      const wanted = this.#normalize(mediaType)
      // Undeclared bytes are JSON or raw bytes: a JSON subscriber gets them unchanged either way.
      if (
        declared === undefined
          ? wanted === 'application/json'
          : wanted !== null && this.#normalize(declared) === wanted
      ) {
        return payload
      }
    }
    const value = event.value
    if (value instanceof Uint8Array) return value
    if (value === undefined) return EMPTY
    try {
      return encodeValue(value, mediaType)
    } catch (error) {
      throw toResourceError(error)
    }
  }

  // ---- state ----------------------------------------------------------------------------------

  state<V = unknown>(name: string): StateStore<V> {
    return this.#stateStore(name) as unknown as StateStore<V>
  }

  #stateStore(name: string): TableStateStore<unknown> {
    let store = this.#states.get(name)
    if (!store) {
      if (typeof name !== 'string' || name === '')
        throw new ResourceError('INVALID', 'a state store needs a name')
      store = new TableStateStore(name, this.store.table(STATE_PREFIX + name, { log: false }))
      this.#states.set(name, store)
    }
    return store
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#unsubscribeFeed()
    this.users.close()
    for (const timer of this.#timers) clearInterval(timer)
    if (this.#ownStore) await this.store.close()
  }

  #assertOpen(): void {
    if (this.#closed) throw new ResourceError('CLOSED', 'the runtime is closed')
  }

  // ---- change feed ----------------------------------------------------------------------------

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
    if (this.#registry.size === 0 && this.#queries.size === 0) return
    const event = this.#toEvent(change)
    if (event === null) return
    this.#registry.dispatch(event)
    if (this.#queries.size !== 0) this.#queries.onChange(change, event)
  }

  #toEvent(change: ChangeEvent): RuntimeEvent | null {
    const slot = change as ChangeEvent & { [key: symbol]: RuntimeEvent | undefined }
    const cached = slot[this.#eventSlot]
    if (cached !== undefined) return cached
    const event = this.#convert(change)
    if (event !== null) slot[this.#eventSlot] = event
    return event
  }

  #convert(change: ChangeEvent): RuntimeEvent | null {
    const meta = change.meta as EventMeta | undefined
    if (change.table === TOPICS_TABLE) {
      const topic = String(change.id)
      const route = this.#router.resolve(topic)
      const event = new RuntimeEvent(
        change.type,
        topic,
        route ? route.resource.path : '',
        route ? route.idText : topic,
        change.timestamp,
        change.cursor,
        change.user,
        false,
        meta,
      )
      const record = change.value as TopicRecord | undefined
      if (record) {
        if (record.payload) event.setPayload(record.payload, record.contentType)
        else event.value = record.value
      }
      return event
    }
    const resource = this.#byStorageName.get(change.table)
    if (resource === undefined) return null
    const event = new RuntimeEvent(
      change.type,
      resource.topicFor(change.id),
      resource.path,
      change.id,
      change.timestamp,
      change.cursor,
      change.user,
      false,
      meta,
    )
    if (change.type !== 'delete') {
      const value = change.value
      event.value = fromStored(value)
      if (change.type !== 'patch' && value !== null && typeof value === 'object') {
        const original = this.#originals.get(value)
        if (original) {
          event.payload = original.payload
          event.contentType = original.contentType
        }
      }
    }
    return event
  }

  #sweepExpired(resource: Table): void {
    const expiration = resource.definition.expiration ?? 0
    const interval = Math.min(60_000, Math.max(1000, (expiration * 1000) / 2))
    const timer = setInterval(() => {
      if (this.#closed) return
      resource.removeExpired().catch((error) => {
        if (!this.#closed) this.#onError(error)
      })
    }, interval)
    timer.unref()
    this.#timers.push(timer)
  }

  #createHost(): ResourceHost {
    const runtime = this
    return {
      store: this.store,
      now: () => this.store.clock.now(),
      dispatch: (event) => this.#dispatchTransient(event),
      createEvent(type, resource, id, topic, ctx, meta) {
        const event = new RuntimeEvent(
          type,
          topic,
          resource ? resource.path : '',
          id,
          runtime.store.clock.now(),
          0,
          ctx?.user?.username,
          false,
          meta,
        )
        event.origin = ctx?.clientId
        return event
      },
      subscribeFilter: (filter, listener, options, ctx) => {
        try {
          return this.#subscribe(filter, listener, options, ctx)
        } catch (error) {
          return Promise.reject(toResourceError(error))
        }
      },
      logMessage: (topic, message, ctx, options) => {
        const record: TopicRecord = message.payload
          ? message.contentType !== undefined
            ? { payload: message.payload, contentType: message.contentType }
            : { payload: message.payload }
          : { value: message.value }
        const write = { meta: storageMeta(message, ctx), ...(ctx.user ? { user: ctx.user.username } : {}) }
        return this.#commitOne(
          (txn) => txn.message(this.#topics, topic, record, write),
          options?.atomic,
          TOPICS_TABLE,
        )
      },
      commit: (write, atomic) => this.#commit(write, atomic),
      toEvent: (change) => this.#toEvent(change),
      publishValue: (topic, value, ctx) => {
        const payload = value instanceof Uint8Array ? value : encodeValue(value, 'application/json')
        return this.publish(topic, { payload, retain: false, qos: 1 }, ctx)
      },
      track: (closable) => this.#scopes.track(closable),
      assertRead: (ctx, keys, what) =>
        this.#permissions.assertTable(ctx, this.#permissions.user(ctx), keys, 'read', what),
      rememberPayload: (value, payload, contentType) => {
        if (payload && value !== null && typeof value === 'object')
          this.#originals.set(value, { payload, contentType })
      },
    }
  }
}

const READY = Promise.resolve()

function withReady(subscription: Subscription): RuntimeSubscription {
  return 'ready' in subscription
    ? (subscription as RuntimeSubscription)
    : Object.assign(subscription, { ready: READY, cursor: 0 })
}

/** The media type of undeclared raw bytes on a plain topic: text stays text, anything else is octet-stream. */
function bytesType(bytes: Uint8Array): string {
  return isUtf8(bytes) ? 'text/plain; charset=utf-8' : 'application/octet-stream'
}

function topicValue(record: TopicRecord): unknown {
  return record.payload ? decodeLoose(record.payload, record.contentType) : record.value
}

function writeOptions(ctx: RequestContext): { user?: string; meta?: Record<string, unknown> } {
  const options: { user?: string; meta?: Record<string, unknown> } = {}
  if (ctx.user) options.user = ctx.user.username
  if (ctx.clientId !== undefined) options.meta = { clientId: ctx.clientId }
  return options
}

function rethrow(error: unknown): never {
  throw toResourceError(error)
}
