import type { OpenStoreOptions, Store } from '@proj/storage'
import type { ResourceError } from './errors.js'
import type { RuntimeEvent } from './event.js'
import type { EventStream } from './event-stream.js'
import type { RoleDefinition } from './permissions.js'
import type { Resource, ResourceInit } from './resource.js'
import type { RuntimeStorage } from './runtime-storage.js'
import type { SchemaDefinition } from './schema.js'
import type { RuntimeSubscription } from './subscribe-flow.js'
import type { SharedDelivery } from './subscriptions.js'
import type { Table } from './table.js'
import type {
  EventListener,
  Key,
  RequestContext,
  Runtime,
  ScramCredential,
  SubscribeOptions,
  User,
} from './types.js'
import type { UserChangeListener } from './user-changes.js'
import type { AuthOptions, Users } from './users.js'

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
  /** How often the change log is compacted (ms, default 60 000; 0 = only when `log.compact()` is called). */
  compactionIntervalMs?: number
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
  /** Shared subscriptions across several runtimes (a cluster): which one delivers each event. */
  shared?: SharedDelivery
}

/** The Runtime of types.ts plus runtime-specific members. */
export interface ResourceRuntime extends Runtime {
  subscribe(
    filter: string,
    listener: EventListener,
    options: SubscribeOptions,
    ctx: RequestContext,
  ): Promise<RuntimeSubscription>
  /** The store seen as cursors, table sizes and commit statistics (records go through the runtime). */
  readonly storage: RuntimeStorage
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
