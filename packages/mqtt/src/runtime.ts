/**
 * The part of @proj/resource's `Runtime` contract the broker uses. Structurally identical to the
 * runtime's own types (packages/resource/src/types.ts), so a real Runtime is assignable to it.
 */
export type Key = string | number | readonly (string | number)[]

export interface User {
  username: string
  role: string
  superUser: boolean
}

export interface RequestContext {
  user: User | null
  transport?: 'mqtt' | 'http' | 'ws' | 'sse' | 'internal'
  clientId?: string
}

export interface EventMeta {
  qos?: 0 | 1 | 2
  clientId?: string
  properties?: Record<string, unknown>
  [key: string]: unknown
}

export interface ResourceEvent {
  type: 'put' | 'patch' | 'delete' | 'message'
  topic: string
  path: string
  id: Key
  value?: unknown
  contentType?: string
  timestamp: number
  cursor: number
  user?: string
  retained: boolean
  meta?: EventMeta
}

export interface PublishMessage {
  payload: Uint8Array
  contentType?: string
  retain: boolean
  qos: 0 | 1 | 2
  meta?: EventMeta
}

export interface StateWrite {
  store: string
  key: Key
  value: unknown
}

export interface StateStore<V = unknown> {
  readonly name: string
  get(key: Key): V | undefined
  put(key: Key, value: V): Promise<void>
  delete(key: Key): Promise<void>
  entries(options?: { prefix?: string }): Iterable<{ key: Key; value: V }>
}

export interface Delivery {
  qos: 0 | 1 | 2
  subscriptionIds: number[]
  retainAsPublished: boolean
}

export interface SubscribeOptions {
  retained?: boolean
  after?: number
  qos?: 0 | 1 | 2
  subscriptionId?: number
  noLocal?: boolean
  retainAsPublished?: boolean
}

export interface Subscription {
  readonly filter: string
  close(): void
}

/** What @proj/mqtt needs from the resource runtime. */
export interface BrokerRuntime {
  authenticate(username: string, password: string): Promise<User | null>
  anonymous(): User | null
  findUser(username: string): Promise<User | null>
  publish(
    topic: string,
    message: PublishMessage,
    ctx: RequestContext,
    options?: { atomic?: StateWrite[] },
  ): Promise<{ event?: ResourceEvent }>
  subscribe(
    filter: string,
    listener: (event: ResourceEvent, delivery: Delivery) => void,
    options: SubscribeOptions,
    ctx: RequestContext,
  ): Promise<Subscription>
  encode(event: ResourceEvent, mediaType: string): Uint8Array
  state<V = unknown>(name: string): StateStore<V>
}
