import type { ChangeEvent, Key, Store, Timestamp } from '@proj/storage'
import { ResourceError } from './errors.js'
import type { RuntimeEvent } from './event.js'
import { EventStream } from './event-stream.js'
import type {
  EventListener,
  EventMeta,
  ListPage,
  ListQuery,
  PublishResult,
  RecordResult,
  RequestContext,
  ResourceEvent,
  StateWrite,
  SubscribeOptions,
  Subscription,
  WriteResult,
} from './types.js'

/** A publish after the runtime decoded the payload and checked permissions. */
export interface ResourceMessage {
  /** The decoded value (a Uint8Array for raw bytes). */
  value: unknown
  /** The publisher's original bytes, when the message came as bytes. */
  payload?: Uint8Array
  contentType?: string
  retain: boolean
  qos: 0 | 1 | 2
  meta?: EventMeta
}

export interface ResourcePublishOptions {
  atomic?: readonly StateWrite[]
}

export interface ResourceWriteOptions {
  ifVersion?: Timestamp
}

export interface ConnectOptions {
  after?: number
  /** The node that handed out `after`, when another (see SubscribeOptions.issuer). */
  issuer?: number
  /**
   * Aborted when the connection closes (WebSocket close, SSE client gone, iterator `return()`): a
   * connect() generator may pass it to whatever it awaits. Subscriptions and event streams it opens
   * through this class are closed with the connection anyway.
   */
  signal?: AbortSignal
}

/** What a resource gets from its runtime (internal plumbing; stable for custom resources to call). */
export interface ResourceHost {
  readonly store: Store
  now(): Timestamp
  /** Sends an unlogged event to matching subscribers now (QoS 0 messages). */
  dispatch(event: RuntimeEvent): void
  /** A new event for this runtime (not dispatched). */
  createEvent(
    type: ResourceEvent['type'],
    resource: Resource | null,
    id: Key,
    topic: string,
    ctx: RequestContext | null,
    meta?: EventMeta,
  ): RuntimeEvent
  /** Subscribes without permission checks (the runtime checked them). */
  subscribeFilter(
    filter: string,
    listener: EventListener,
    options: SubscribeOptions,
    ctx: RequestContext,
  ): Promise<Subscription>
  /** Logs a message event for a topic through the built-in topics table (resources without a table). */
  logMessage(
    topic: string,
    message: ResourceMessage,
    ctx: RequestContext,
    options?: ResourcePublishOptions,
  ): Promise<PublishResult>
  /** Commits storage writes plus state writes in one transaction; returns the committed event for `table`. */
  commit(
    writes: (txn: Parameters<Parameters<Store['transaction']>[0]>[0]) => void,
    atomic: readonly StateWrite[] | undefined,
  ): Promise<ChangeEvent[]>
  /** The event a committed storage change becomes (same object as dispatched when available). */
  toEvent(change: ChangeEvent): RuntimeEvent | null
  /** Publishes a value (not bytes) to a topic with the caller's permissions, as a QoS 1 message. */
  publishValue(topic: string, value: unknown, ctx: RequestContext): Promise<PublishResult>
  /** Ties a subscription or stream to the connection whose connect() is running (closed with it). */
  track?(closable: { close(): void }): void
  /**
   * Throws FORBIDDEN (or UNAUTHORIZED) unless the caller may read a table with these permission keys;
   * queries check related tables they read through relationships with it.
   */
  assertRead?(ctx: RequestContext, keys: readonly string[], what: string): void
}

export interface ResourceInit {
  host: ResourceHost
  /** Export path (`Dog`, `api/things`). */
  path: string
  /** Export name in the application (type name or resources.js export name). */
  name: string
}

/**
 * What `publish` returns when the message went to every subscriber during the call and nothing was stored
 * (QoS 0, not retained): always this one promise, so a caller on a hot path may compare against it instead
 * of waiting for it (exported as `DELIVERED`).
 */
export const RESOLVED_EMPTY: Promise<PublishResult> = Promise.resolve(Object.freeze({}))

/** A message not logged (QoS 0, no state writes): one event, handed to subscribers now. */
export function dispatchMessage(
  host: ResourceHost,
  resource: Resource,
  id: Key,
  topic: string,
  message: ResourceMessage,
  ctx: RequestContext,
): Promise<PublishResult> {
  const event = host.createEvent('message', resource, id, topic, ctx, message.meta)
  event.value = message.value
  if (message.payload) {
    event.payload = message.payload
    event.contentType = message.contentType
  }
  host.dispatch(event)
  return RESOLVED_EMPTY
}

/**
 * Base class of everything routable. The runtime resolves the path, checks permissions, coerces the id
 * and then calls these methods, so an override never has to repeat the checks. Methods a resource does
 * not support throw METHOD_NOT_ALLOWED.
 *
 * @example
 * // resources.js of an application
 * export default ({ Resource }) => ({
 *   Time: class extends Resource {
 *     async get(id) { return { id, value: { now: Date.now() }, version: 0 } }
 *   },
 * })
 */
export class Resource {
  readonly path: string
  readonly name: string
  protected readonly host: ResourceHost
  readonly #keys: readonly string[]

  constructor(init: ResourceInit) {
    this.host = init.host
    this.path = init.path
    this.name = init.name
    this.#keys = init.name === init.path ? [init.path] : [init.path, init.name]
  }

  /** Names under which role `tables` permissions are looked up (then `*`). */
  get permissionKeys(): readonly string[] {
    return this.#keys
  }

  /** Turns the id text of a path or topic into a key (tables coerce by the primary key type). */
  coerceId(raw: string): Key {
    return raw
  }

  /** The topic of one record. */
  topicFor(id: Key): string {
    return `${this.path}/${Array.isArray(id) ? id.join('/') : String(id)}`
  }

  /** Whether a record exists (decides insert vs update permission of a put). */
  has(_id: Key): boolean {
    return true
  }

  async get(_id: Key, _ctx: RequestContext): Promise<RecordResult | undefined | unknown> {
    throw this.#notAllowed('get')
  }

  async list(_query: ListQuery, _ctx: RequestContext): Promise<RecordResult[]> {
    throw this.#notAllowed('list')
  }

  /**
   * A page of `list` with the cursor of the next page. The default returns `list(query)` without a
   * cursor; tables implement keyset pagination (`query.after`).
   */
  async listPage(query: ListQuery, ctx: RequestContext): Promise<ListPage> {
    return { items: await this.list(query, ctx) }
  }

  async put(
    _id: Key,
    _value: unknown,
    _ctx: RequestContext,
    _options?: ResourceWriteOptions,
  ): Promise<WriteResult> {
    throw this.#notAllowed('put')
  }

  async patch(
    _id: Key,
    _patch: unknown,
    _ctx: RequestContext,
    _options?: ResourceWriteOptions,
  ): Promise<WriteResult> {
    throw this.#notAllowed('patch')
  }

  async post(_value: unknown, _ctx: RequestContext): Promise<WriteResult> {
    throw this.#notAllowed('post')
  }

  async delete(_id: Key, _ctx: RequestContext, _options?: ResourceWriteOptions): Promise<boolean> {
    throw this.#notAllowed('delete')
  }

  /**
   * A publish to one of this resource's topics. Default: retain = put (empty = delete) through
   * `put`/`delete`; otherwise a message event to subscribers (QoS 0 immediately, else logged first).
   */
  publish(
    id: Key,
    message: ResourceMessage,
    ctx: RequestContext,
    options?: ResourcePublishOptions,
  ): Promise<PublishResult> {
    if (message.retain) {
      const write =
        message.payload?.length === 0
          ? this.delete(id, ctx).then(() => ({}))
          : this.put(id, message.value, ctx).then(() => ({}))
      return write
    }
    const topic = this.topicFor(id)
    if (message.qos === 0 && !options?.atomic?.length)
      return dispatchMessage(this.host, this, id, topic, message, ctx)
    return this.host.logMessage(topic, message, ctx, options)
  }

  /** Subscribes to `idFilter` under this resource's path (`'#'` = every record). */
  subscribe(
    idFilter: string,
    listener: EventListener,
    options: SubscribeOptions,
    ctx: RequestContext,
  ): Promise<Subscription> {
    return this.host.subscribeFilter(`${this.path}/${idFilter}`, listener, options, ctx)
  }

  /**
   * A WebSocket/SSE connection. The default subscribes to the record (or every record when `id` is
   * undefined), starting with current values unless resuming `after` a cursor, and publishes each
   * incoming value as a message. Override with an async generator to stream anything.
   */
  async connect(
    id: Key | undefined,
    incoming: AsyncIterable<unknown> | undefined,
    ctx: RequestContext,
    options: ConnectOptions = {},
  ): Promise<AsyncIterable<ResourceEvent>> {
    const topic = id === undefined ? this.path : this.topicFor(id)
    const stream = new EventStream<ResourceEvent>((value) => {
      const event = this.host.createEvent('message', this, id ?? '', topic, ctx)
      event.value = value
      return event
    })
    const idFilter = id === undefined ? '#' : topic.slice(this.path.length + 1)
    const subscribeOptions: SubscribeOptions =
      options.after === undefined
        ? { retained: true, qos: 1 }
        : { retained: false, after: options.after, issuer: options.issuer, qos: 1 }
    const subscription = await this.subscribe(idFilter, (event) => stream.push(event), subscribeOptions, ctx)
    stream.once('close', () => subscription.close())
    this.host.track?.(stream)
    if (incoming && id !== undefined) {
      void (async () => {
        try {
          for await (const value of incoming) {
            if (stream.closed) break
            await this.host.publishValue(topic, value, ctx)
          }
        } catch (error) {
          stream.emit('incomingError', error)
        }
      })()
    }
    return stream
  }

  /** Current values matching `filter` (a topic filter within this resource), for retained delivery. */
  snapshot(_idFilter: string, _filter: string): Iterable<RuntimeEvent> {
    return []
  }

  #notAllowed(method: string): ResourceError {
    return new ResourceError('METHOD_NOT_ALLOWED', `${this.path} does not support ${method}`)
  }
}
