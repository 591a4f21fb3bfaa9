import { ConnectIterator, ConnectScope, type ConnectScopes } from './connect-scope.js'
import { RuntimeEvent } from './event.js'
import { EventStream } from './event-stream.js'
import type { ConnectOptions, Resource, ResourceHost } from './resource.js'
import type { RuntimeSubscription } from './subscribe-flow.js'
import type {
  ConnectResume,
  EventListener,
  Key,
  RequestContext,
  ResourceEvent,
  SubscribeOptions,
  Subscription,
} from './types.js'

/**
 * A WebSocket/SSE connection to a resource (the runtime resolved it and checked read permission).
 * Everything connect() opens (and, for a generator, everything its body opens later) belongs to
 * this connection's scope, so closing the connection can close it without waiting for an event.
 */
export async function connectResource(
  resource: Resource,
  id: Key | undefined,
  ctx: RequestContext,
  incoming: AsyncIterable<unknown> | undefined,
  options: ConnectResume | undefined,
  host: ResourceHost,
  scopes: ConnectScopes,
  onError: (error: unknown) => void,
): Promise<AsyncIterable<ResourceEvent>> {
  const scope = new ConnectScope()
  const connectOptions: ConnectOptions = { signal: scope.signal }
  if (options?.after !== undefined) connectOptions.after = options.after
  if (options?.issuer !== undefined) connectOptions.issuer = options.issuer
  let result: AsyncIterable<unknown>
  try {
    result = await scopes.run(scope, () =>
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
    const event = host.createEvent('message', resource, id ?? '', topic, ctx)
    event.value = value
    return event
  }
  return new ConnectIterator(result, toEvent, scope, scopes, onError)
}

/**
 * A WebSocket/SSE connection to a plain topic (or filter): its messages, and publishes of its input
 * (a single topic only, after `assertPublish`).
 */
export async function connectTopic(
  runtime: {
    subscribe(
      filter: string,
      listener: EventListener,
      options: SubscribeOptions,
      ctx: RequestContext,
    ): Promise<RuntimeSubscription>
  },
  host: ResourceHost,
  topic: string,
  ctx: RequestContext,
  incoming: AsyncIterable<unknown> | undefined,
  options: ConnectResume | undefined,
  assertPublish: () => void,
): Promise<AsyncIterable<ResourceEvent>> {
  const stream = new EventStream<ResourceEvent>((value) => {
    const event = host.createEvent('message', null, topic, topic, ctx)
    event.value = value
    return event
  })
  const subscription = await runtime.subscribe(
    topic,
    (event) => stream.push(event),
    options?.after === undefined
      ? { retained: true, qos: 1 }
      : { retained: false, after: options.after, issuer: options.issuer, qos: 1 },
    ctx,
  )
  stream.once('close', () => subscription.close())
  if (incoming && !topic.includes('+') && !topic.includes('#')) {
    assertPublish()
    void (async () => {
      try {
        for await (const value of incoming) {
          if (stream.closed) break
          await host.publishValue(topic, value, ctx)
        }
      } catch (error) {
        stream.emit('incomingError', error)
      }
    })()
  }
  return stream
}

function isEventLike(value: unknown): value is ResourceEvent {
  if (value instanceof RuntimeEvent) return true
  if (value === null || typeof value !== 'object') return false
  const v = value as Partial<ResourceEvent>
  return typeof v.type === 'string' && typeof v.topic === 'string' && typeof v.timestamp === 'number'
}

/** WebSocket / SSE on `Dog/?query`: the query subscription's events (incoming messages are not read). */
export function connectQuery(
  host: ResourceHost,
  filter: string,
  ctx: RequestContext,
  options: ConnectResume | undefined,
  subscribe: (listener: EventListener, options: SubscribeOptions) => Subscription,
): Promise<AsyncIterable<ResourceEvent>> {
  const stream = new EventStream<ResourceEvent>((value) => {
    const event = host.createEvent('message', null, filter, filter, ctx)
    event.value = value
    return event
  })
  const subscription = subscribe(
    (event) => stream.push(event),
    options?.after === undefined
      ? { retained: true, qos: 1 }
      : { retained: false, after: options.after, issuer: options.issuer, qos: 1 },
  )
  stream.once('close', () => subscription.close())
  return Promise.resolve(stream)
}
