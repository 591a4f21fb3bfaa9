/**
 * Persistence format of MQTT sessions, kept in the runtime's transport state stores (never the change log).
 * Version field `v` lets a later release migrate records.
 */
import type { Key, StateStore } from './runtime.js'

/** Store names in runtime.state(). */
export const SESSIONS_STORE = 'mqtt-sessions'
export const INFLIGHT_STORE = 'mqtt-inflight'
/** Key [clientId, packetId], value 1: an inbound QoS 2 packet id applied but not yet released. */
export const QOS2_STORE = 'mqtt-qos2'
export const WILLS_STORE = 'mqtt-wills'

/** Session Expiry Interval meaning "never" (MQTT 5 section 3.1.2.11.2). */
export const NEVER_EXPIRES = 0xffffffff

/** Key `clientId` in SESSIONS_STORE. */
export interface StoredSession {
  v: 1
  clientId: string
  /** The owner: the user who created the session, null for the anonymous user. */
  username: string | null
  protocolVersion: number
  /** Session Expiry Interval, seconds (NEVER_EXPIRES for v3 clean-session 0). */
  expiry: number
  /** ms since the epoch; null while connected (after a crash: treated as "now" at start-up). */
  disconnectedAt: number | null
  subscriptions: StoredSubscription[]
}

export interface StoredSubscription {
  filter: string
  qos: 0 | 1 | 2
  nl: boolean
  rap: boolean
  rh: number
  id?: number
  accept?: string
  /** Change-log cursor: every logged event up to here was delivered (QoS 0) or acknowledged (QoS 1/2). */
  cursor: number
  /**
   * The node that issued `cursor` (the runtime's `cursorIssuer` where it moved), when it has one: a node of
   * a cluster with `ack: local`, whose cursors are exact elsewhere only together with its id.
   */
  issuer?: number
}

/** Key [clientId, packetId] in INFLIGHT_STORE: an outbound QoS 1/2 message not yet completed. */
export interface StoredInflight {
  topic: string
  payload: Uint8Array
  qos: 1 | 2
  retain: boolean
  /** 'publish': waiting for PUBACK/PUBREC; 'pubrel': PUBREC received, waiting for PUBCOMP. */
  state: 'publish' | 'pubrel'
  filter: string
  /** Overlapping subscriptions this one copy was also sent for (their cursors move with it). */
  also?: string[]
  cursor: number
  /** The node that issued `cursor`, when it has one (see StoredSubscription.issuer). */
  issuer?: number
  /** Encoded MQTT 5 property block, used when the client reconnects with v5. */
  props?: Uint8Array
}

/** Key [clientId, connectionId] in WILLS_STORE: a will that is not yet published or discarded. */
export interface StoredWill {
  clientId: string
  /** Published with this user's permissions; null: the anonymous user. */
  username: string | null
  topic: string
  payload: Uint8Array
  qos: 0 | 1 | 2
  retain: boolean
  contentType?: string
  properties?: Record<string, unknown>
  /** Will Delay Interval, seconds. */
  delay: number
  /** ms since the epoch when it is due; null while its connection is open. */
  dueAt: number | null
}

function sessionKey(clientId: string): Key {
  return clientId
}

export function packetKey(clientId: string, packetId: number): Key {
  return [clientId, packetId]
}

/** The highest packet id: the widest [clientId, packetId] key a session writes. */
const MAX_PACKET_ID = 65535

type States = <V>(name: string) => StateStore<V>

/** Whether every key a durable session of `clientId` writes (record, in-flight, QoS 2 ids) fits the storage. */
export function sessionKeysFit(state: States, clientId: string): boolean {
  return (
    state(SESSIONS_STORE).accepts(sessionKey(clientId)) &&
    state(INFLIGHT_STORE).accepts(packetKey(clientId, MAX_PACKET_ID)) &&
    state(QOS2_STORE).accepts(packetKey(clientId, MAX_PACKET_ID))
  )
}

/** Key [clientId, connectionId] in WILLS_STORE. */
export function willKey(clientId: string, connectionId: string): readonly [string, string] {
  return [clientId, connectionId]
}
