/** The resource runtime contract the broker is written against (packages/resource/src/types.ts). */
export type {
  Delivery,
  EventMeta,
  Key,
  PublishListener,
  PublishMessage,
  PublishOptions,
  RequestContext,
  ResourceEvent,
  Runtime,
  ScramCredential,
  StateStore,
  Subscription,
  User,
  UserChange,
} from '@proj/resource'

import type { Runtime } from '@proj/resource'

/** What `runtime.publish` returns when the message was delivered during the call and nothing was stored. */
export { DELIVERED } from '@proj/resource'

/** What @proj/mqtt uses of the runtime. */
export type BrokerRuntime = Pick<
  Runtime,
  | 'authenticate'
  | 'anonymous'
  | 'findUser'
  | 'scramCredentials'
  | 'publish'
  | 'publishWith'
  | 'subscribe'
  | 'mayReceive'
  | 'cursorIssuer'
  | 'encode'
  | 'state'
  | 'onUserChange'
>
