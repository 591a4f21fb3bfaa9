/**
 * @proj/resource: the runtime every transport talks to. Tables and resources from schema.graphql,
 * routing, validation, subscriptions, users, roles and permissions.
 * @packageDocumentation
 */
export type { ApplicationConfig, ApplicationSource } from './application.js'
export { readApplication } from './application.js'
export { sourceKey } from './auth-limiter.js'
export { TOPICS_TABLE } from './builtin-topics.js'
export type { ResourceErrorCode, ResourceErrorOptions } from './errors.js'
export { isResourceError, ResourceError, SchemaError } from './errors.js'
export { RuntimeEvent } from './event.js'
export { EventStream } from './event-stream.js'
export { openRuntime } from './open-runtime.js'
export {
  DEFAULT_SCRAM_ITERATIONS,
  hashPassword,
  MIN_SCRAM_ITERATIONS,
  scramCredential,
  verifyPassword,
} from './passwords.js'
export type {
  Access,
  RoleDefinition,
  TableAction,
  TablePermission,
  TopicAction,
  TopicRule,
} from './permissions.js'
export { BUILT_IN_ROLES } from './permissions.js'
export type {
  ConnectOptions,
  ResourceHost,
  ResourceInit,
  ResourceMessage,
  ResourcePublishOptions,
  ResourceWriteOptions,
} from './resource.js'
export { RESOLVED_EMPTY as DELIVERED, Resource } from './resource.js'
export type { Route } from './router.js'
export type { RuntimeStorage } from './runtime-storage.js'
export type {
  ResourceClass,
  ResourceKit,
  ResourceRuntime,
  RuntimeOptions,
  TableClass,
} from './runtime-types.js'
export type {
  AttributeDefinition,
  ScalarName,
  SchemaDefinition,
  TableDefinition,
  TypeDefinition,
  TypeRef,
} from './schema.js'
export { parseSchema } from './schema.js'
export type { RuntimeSubscription } from './subscribe-flow.js'
export type { SharedDelivery } from './subscriptions.js'
export type { TableInit } from './table.js'
export { Table } from './table.js'
export type { TopicRecord } from './topic-record.js'
export type {
  ConnectResume,
  Delivery,
  EventListener,
  EventMeta,
  EventType,
  Key,
  ListPage,
  ListQuery,
  PublishListener,
  PublishMessage,
  PublishOptions,
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
  Timestamp,
  User,
  UserAdmin,
  UserChange,
  WriteResult,
} from './types.js'
export type { UserChangeListener } from './user-changes.js'
export type { AuthFailure, AuthOptions } from './users.js'
export { Users } from './users.js'
