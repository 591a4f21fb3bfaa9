/**
 * The public contract of @proj/resource: what every transport (@proj/mqtt, @proj/http) calls.
 * Transports never touch storage; they call a Runtime with a RequestContext and get ResourceEvents.
 * Change these types only together with their users.
 */

import type { Query } from '@proj/query'
import type { Key, Timestamp } from '@proj/storage'
import type { UserChange } from './user-changes.js'

export type { Key, Timestamp, UserChange }

/**
 * `leave` and `reset` reach query subscribers only: a record changed out of the query's result, and the
 * result starting over (a resume past the change log's retention, before a fresh snapshot).
 */
export type EventType = 'put' | 'patch' | 'delete' | 'message' | 'leave' | 'reset'

/** A user after authentication. `role` names a role; `superUser` bypasses every permission check. */
export interface User {
  username: string
  role: string
  superUser: boolean
}

/** Carried by every runtime call; permissions are checked against `user` (null = anonymous). */
export interface RequestContext {
  user: User | null
  transport?: 'mqtt' | 'http' | 'ws' | 'sse' | 'internal'
  /** MQTT client id (used for "no local" and for diagnostics). */
  clientId?: string
}

/**
 * What a subscriber receives. `topic` is `${exportPath}/${id}` for table records and the raw topic
 * for topics no table claims. `value` is the decoded structured value, or a Uint8Array of raw bytes
 * (then `contentType` tells what they are, and they are delivered byte-for-byte in every format).
 */
export interface ResourceEvent {
  type: EventType
  topic: string
  /** Export path of the resource (`Dog`), or '' for the built-in topics table. */
  path: string
  id: Key
  value?: unknown
  /** Media type of the publisher's bytes when known (MQTT contentType, HTTP Content-Type). */
  contentType?: string
  /** Origin timestamp (record version). */
  timestamp: Timestamp
  /** Change-log position; 0 for events that were not logged (QoS 0 messages). Used as SSE id and session cursor. */
  cursor: number
  user?: string
  /** True when this is a current value delivered at subscribe time (a retained message). */
  retained: boolean
  /**
   * On the last current value delivered at subscribe time (cursor 0): the change-log position that
   * state is as of. A client holding it has everything up to there, so resuming after it is exact (SSE
   * sends it as that event's id). Earlier current values have none: a resume from a partial snapshot
   * would miss the rest of it.
   */
  resumeCursor?: number
  /** Publisher-supplied extras that travel with the event: MQTT qos, v5 properties, publishing clientId. */
  meta?: EventMeta
}

export interface EventMeta {
  qos?: 0 | 1 | 2
  clientId?: string
  /** MQTT 5 PUBLISH properties to pass through (userProperties, responseTopic, correlationData, messageExpiryInterval, payloadFormatIndicator). */
  properties?: Record<string, unknown>
  [key: string]: unknown
}

/** Message to publish: payload bytes as received, decoded by the runtime per DESIGN.md content negotiation. */
export interface PublishMessage {
  payload: Uint8Array
  /** Media type from MQTT 5 contentType, or the connection's declared type. */
  contentType?: string
  /** true: put (empty payload = delete) the record; false: a message event to subscribers only. */
  retain: boolean
  /** QoS 0 non-retained messages skip the change log (fast path, not replayed to offline sessions). */
  qos: 0 | 1 | 2
  meta?: EventMeta
}

/** How a transport hands a publish to the runtime (`ResourceRuntime.publish`). */
export interface PublishOptions {
  /** State writes committed atomically with the publish (a QoS 2 packet id, a will's removal). */
  atomic?: StateWrite[]
  /**
   * The caller has already checked that `topic` is a valid topic name (MQTT must, to close with reason
   * 0x90), so the runtime does not check it a second time on the hot path. Permissions are still checked.
   */
  topicChecked?: boolean
}

export interface PublishResult {
  event?: ResourceEvent
}

/**
 * Told once when a publish made with `Runtime.publishWith` settles: committed (retained, or QoS > 0;
 * dispatched for QoS 0) or refused with the error `publish` would reject with. What it throws is reported
 * to the runtime's `onError`.
 */
export interface PublishListener {
  publishSettled(error: unknown): void
}

/** A write to a transport-owned state store, committed atomically with a publish (exactly-once QoS 2). */
export interface StateWrite {
  store: string
  key: Key
  /** undefined deletes the key. */
  value: unknown
  /** Only when the stored version is this one (else the whole commit fails with CONFLICT): a will sent once. */
  ifVersion?: number
}

/** Durable key/value state owned by a transport (MQTT sessions, inbound QoS 2 packet ids, wills). Not logged, not routable. */
export interface StateStore<V = unknown> {
  readonly name: string
  get(key: Key): V | undefined
  /** The version (write timestamp) of the stored value; undefined when absent. */
  version(key: Key): number | undefined
  put(key: Key, value: V): Promise<void>
  delete(key: Key): Promise<void>
  entries(options?: { prefix?: string }): Iterable<{ key: Key; value: V }>
  /** Whether `key` can be stored (storage's key size and types), so a caller can refuse early and clearly. */
  accepts(key: Key): boolean
}

/** Per-match delivery details from the subscription trie (MQTT 5 section 3.3.4: highest QoS, all identifiers). */
export interface Delivery {
  qos: 0 | 1 | 2
  subscriptionIds: number[]
  retainAsPublished: boolean
}

export type EventListener = (event: ResourceEvent, delivery: Delivery) => void

export interface SubscribeOptions {
  /** Send current matching records first as retained events (default true). */
  retained?: boolean
  /** Replay logged events with cursor > `after` (durable-session catch-up, SSE Last-Event-ID), then go live. */
  after?: number
  /**
   * The node that handed out `after` (its `cursorIssuer`) when that was not this runtime's: a node of a
   * cluster with `ack: local` numbers its own events ahead of the stream, so its cursor is exact only
   * together with its id. Omitted: a cursor of this runtime, or a plain one.
   */
  issuer?: number
  qos?: 0 | 1 | 2
  subscriptionId?: number
  /** MQTT 5 no local: skip events whose meta.clientId equals ctx.clientId. */
  noLocal?: boolean
  retainAsPublished?: boolean
  /**
   * Shared subscriptions (`$share/{group}/{filter}`): called when this member's turn comes in the group's
   * round robin; `false` (e.g. its in-flight window is full) passes the event to the next member. When no
   * member can take it, it goes to the member whose turn it was anyway.
   */
  canDeliver?: () => boolean
  /**
   * The subscriber's back-pressure on its initial events (current values, replay): asked after each slice
   * of them; a promise pauses the initial delivery until it settles (e.g. the subscriber's socket drained).
   * Live events meanwhile wait behind them, as during any initial delivery.
   */
  pace?: () => Promise<void> | undefined
}

export interface Subscription {
  readonly filter: string
  /** Change-log cursor when the subscription was made (a durable session may store it as its position); 0 when unknown. */
  readonly cursor?: number
  close(): void
}

export interface RecordResult {
  id: Key
  value: unknown
  version: Timestamp
  /**
   * The media type of a raw-byte value (a plain topic's retained payload): the publisher's declared
   * type, else `text/plain; charset=utf-8` for UTF-8 text and `application/octet-stream` for the rest.
   */
  contentType?: string
}

export interface WriteResult {
  id: Key
  version: Timestamp
  /** True when the write created the record (HTTP 201). */
  created: boolean
}

export interface ListQuery {
  /**
   * Attribute equality conditions, `String(value) === text` (served from a secondary index when an
   * attribute is `@indexed`).
   */
  where?: Record<string, string>
  /**
   * A query in the URL query language (`@proj/query`'s `parseQuery`): conditions, `select()`,
   * `limit()`, `sort()`, `after=`. Its conditions apply together with `where`; its functions and
   * parameters take the place of the fields below.
   */
  query?: Query
  limit?: number
  /** Records to skip (after `after`, when both are given). */
  offset?: number
  /**
   * Keyset pagination: an opaque cursor from a previous page's `ListPage.next`; the list continues
   * with the records after that page's last one. Same `where` / `sort` as that page, or the result is
   * undefined. An undecodable cursor is INVALID.
   */
  after?: string
  /** Attributes to return (objects with those attributes). */
  select?: string[]
  sort?: { attribute: string; descending?: boolean }[]
}

/** One page of a list: `next` is the `after` cursor of the following page, present when more records remain. */
export interface ListPage {
  items: RecordResult[]
  next?: string
  /** What a table read to answer: index keys and records (records read vs items returned). */
  reads?: { keys: number; records: number }
}

/**
 * A SCRAM credential (RFC 5802 section 3; SCRAM-SHA-256, RFC 7677): what a server stores to verify a
 * SCRAM exchange without the password. Byte fields are raw (not base64).
 */
export interface ScramCredential {
  mechanism: 'SCRAM-SHA-256'
  salt: Uint8Array
  iterations: number
  storedKey: Uint8Array
  serverKey: Uint8Array
}

/**
 * User administration (CLI `user add | passwd | list | delete`); passwords are stored scrypt-hashed,
 * together with a SCRAM-SHA-256 credential for enhanced authentication.
 */
export interface UserAdmin {
  add(username: string, password: string, options?: { role?: string; superUser?: boolean }): Promise<User>
  setPassword(username: string, password: string): Promise<void>
  /** Changes a user's role or super-user flag (its connections are closed: see `onUserChange`). */
  update(username: string, changes: { role?: string; superUser?: boolean }): Promise<User>
  list(): User[]
  delete(username: string): Promise<boolean>
}

/** Where a WebSocket/SSE connection resumes (Last-Event-ID): as in SubscribeOptions. */
export type ConnectResume = Pick<SubscribeOptions, 'after' | 'issuer'>

export interface Runtime {
  /**
   * The id to keep with the cursors of this runtime's events (`ResourceEvent.cursor`) and to pass back
   * as `issuer` with them: its node's, when it commits writes ahead of a cluster's stream (`ack:
   * local`); undefined when cursors are plain positions, valid as they are on every node.
   */
  readonly cursorIssuer: number | undefined
  // Identity
  /**
   * The user with this password, or null. `source` is the client's address (transports pass it): failed
   * attempts back off per address and per username, and while they do the call rejects with
   * TOO_MANY_REQUESTS (`details.retryAfterMs`) without checking the password.
   */
  authenticate(username: string, password: string, source?: string): Promise<User | null>
  /** The anonymous user when anonymous access is on, else null. */
  anonymous(): User | null
  /** Looks a user up without a password (mTLS: the certificate names the user). */
  findUser(username: string): Promise<User | null>
  /**
   * The user's SCRAM-SHA-256 credential (stored when the password was last set), or null for an unknown
   * user or one whose password predates SCRAM credentials. Optional for other Runtime implementations.
   */
  scramCredentials?(username: string): Promise<ScramCredential | null>
  /** Bearer tokens for HTTP (issued by a login endpoint), signed by the runtime. */
  issueToken(user: User, options?: { expiresInMs?: number }): Promise<string>
  verifyToken(token: string): Promise<User | null>
  /**
   * Tells `listener` when a user is deleted (`deleted`), gets another role (`role`) or a new password
   * (`password`; its tokens stop working), whether this process or another one on the same store (the
   * CLI) made the change. Transports close the affected connections. Returns the unsubscribe function.
   * Optional for other Runtime implementations.
   */
  onUserChange?(listener: (change: UserChange) => void): () => void
  readonly users: UserAdmin

  // REST-style access; all throw ResourceError (codes in errors.ts) and check permissions.
  get(target: string, ctx: RequestContext): Promise<RecordResult | undefined>
  list(path: string, query: ListQuery, ctx: RequestContext): Promise<RecordResult[]>
  /** Like `list`, plus the cursor of the next page when `limit` cut the result short (keyset pagination). */
  listPage(path: string, query: ListQuery, ctx: RequestContext): Promise<ListPage>
  put(
    target: string,
    value: unknown,
    ctx: RequestContext,
    options?: { ifVersion?: Timestamp },
  ): Promise<WriteResult>
  patch(
    target: string,
    patch: unknown,
    ctx: RequestContext,
    options?: { ifVersion?: Timestamp },
  ): Promise<WriteResult>
  post(path: string, value: unknown, ctx: RequestContext): Promise<WriteResult>
  delete(target: string, ctx: RequestContext, options?: { ifVersion?: Timestamp }): Promise<boolean>

  // Messaging
  /**
   * Resolves once committed (retained, or QoS > 0); `atomic` state writes commit in the same transaction.
   * Returns the exported `DELIVERED` promise itself when the message reached every subscriber during the
   * call and nothing was stored (QoS 0, not retained), so a hot path may skip waiting for it.
   */
  publish(
    topic: string,
    message: PublishMessage,
    ctx: RequestContext,
    options?: PublishOptions,
  ): Promise<PublishResult>
  /**
   * `publish` without a promise, for a transport that only needs to know when it settled (an MQTT
   * PUBACK): `listener.publishSettled` is called once, after the same commit. A plain topic's durable
   * publish then costs no promise, resolver or closure.
   */
  publishWith(
    topic: string,
    message: PublishMessage,
    ctx: RequestContext,
    options: PublishOptions | undefined,
    listener: PublishListener,
  ): void
  subscribe(
    filter: string,
    listener: EventListener,
    options: SubscribeOptions,
    ctx: RequestContext,
  ): Promise<Subscription>
  /**
   * Whether `ctx`'s user may receive events on `topic` now (read on the record's table, or subscribe on
   * a topic no table claims): for messages a transport kept for the user, e.g. MQTT in-flight resends.
   */
  mayReceive(topic: string, ctx: RequestContext): boolean
  /** WebSocket/SSE: runs the resource's connect(); default subscribes to the record or table. */
  connect(
    target: string,
    ctx: RequestContext,
    incoming?: AsyncIterable<unknown>,
    options?: ConnectResume,
  ): Promise<AsyncIterable<ResourceEvent>>

  /** Encodes an event's value for a subscriber's media type, once per (event, type); raw bytes pass through. */
  encode(event: ResourceEvent, mediaType: string): Uint8Array

  state<V = unknown>(name: string): StateStore<V>
  close(): Promise<void>
}
