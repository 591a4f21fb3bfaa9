import { encode as encodeValue } from '@proj/codec'
import type { Store } from '@proj/storage'
import type { ChangeEvents } from './change-events.js'
import type { ConnectScopes } from './connect-scope.js'
import { RuntimeEvent } from './event.js'
import type { Permissions } from './permissions.js'
import type { ResourceHost } from './resource.js'
import type { StateStores } from './state-store.js'
import { toResourceError } from './storage-writes.js'
import type { PublishMessage, PublishResult, RequestContext } from './types.js'

/** The runtime's parts a ResourceHost hands to resources (the rest arrives later, as functions). */
export interface HostParts {
  store: Store
  /** Hands a transient (unlogged) event to subscribers here and to the relay. */
  dispatch: (event: RuntimeEvent) => void
  events: ChangeEvents
  states: StateStores
  scopes: ConnectScopes
  permissions: Permissions
  subscribeFilter: ResourceHost['subscribeFilter']
  logMessage: ResourceHost['logMessage']
  publish(topic: string, message: PublishMessage, ctx: RequestContext): Promise<PublishResult>
}

/** What every resource of a runtime gets as `this.host`: the runtime's plumbing, without its checks. */
export function createHost(parts: HostParts): ResourceHost {
  const { store, events, states, scopes, permissions } = parts
  return {
    store,
    now: () => store.clock.now(),
    dispatch: (event) => parts.dispatch(event),
    createEvent(type, resource, id, topic, ctx, meta) {
      const event = new RuntimeEvent(
        type,
        topic,
        resource ? resource.path : '',
        id,
        store.clock.now(),
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
        return parts.subscribeFilter(filter, listener, options, ctx)
      } catch (error) {
        return Promise.reject(toResourceError(error))
      }
    },
    logMessage: (topic, message, ctx, options) => parts.logMessage(topic, message, ctx, options),
    commit: (write, atomic) => states.commit(write, atomic),
    toEvent: (change) => events.toEvent(change),
    publishValue: (topic, value, ctx) => {
      const payload = value instanceof Uint8Array ? value : encodeValue(value, 'application/json')
      return parts.publish(topic, { payload, retain: false, qos: 1 }, ctx)
    },
    track: (closable) => scopes.track(closable),
    assertRead: (ctx, keys, what) => permissions.assertTable(ctx, permissions.user(ctx), keys, 'read', what),
  }
}
