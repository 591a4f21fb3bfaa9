/**
 * The CONNECT handshake's decisions, apart from the connection that carries them out: is the CONNECT
 * acceptable (MQTT 3.1.1 section 3.1, MQTT 5 section 3.1), which client id and keep-alive it gets, who the
 * client is (password, client certificate, anonymous, or an enhanced-authentication exchange), its will,
 * and the CONNACK properties.
 */
import { isUtf8 } from 'node:buffer'
import { randomUUID } from 'node:crypto'
import type { AuthMethodFactory, AuthResult } from './auth.js'
import type { ConnectionInfo } from './connection-info.js'
import {
  errorReason,
  MalformedPacketError,
  type MqttError,
  ProtocolError,
  ReasonCode,
  reasonCodeFor,
} from './errors.js'
import type { ConnackPacket, ConnectPacket } from './packets.js'
import type { Runtime, StateStore, User } from './runtime.js'
import type { SessionOwner } from './session-owner.js'
import { type StoredWill, sessionKeysFit, WILLS_STORE, willKey } from './session-store.js'
import { isValidTopicName, isValidUtf8String } from './topic-validate.js'
import type { Logger, SessionInfo } from './types.js'

/** What the handshake reads of the broker. */
export interface HandshakeHost {
  readonly runtime: Pick<Runtime, 'findUser' | 'authenticate' | 'anonymous'>
  readonly logger: Logger
  readonly maxKeepAlive: number
  readonly maxPacketSize: number
  readonly receiveMaximum: number
  readonly topicAliasMaximum: number
  readonly requireAuthentication: boolean
  readonly authenticationMethods: Readonly<Record<string, AuthMethodFactory>>
  readonly responseInformation: false | ((session: SessionInfo) => string | undefined)
  state<V = unknown>(name: string): StateStore<V>
}

/** A CONNECT that may proceed, with what was decided about it. */
export interface AcceptedConnect {
  kind: 'ok'
  clientId: string
  /** The client id the server assigned (v5 CONNACK Assigned Client Identifier). */
  assigned: string | undefined
  keepAlive: number
  /** v5 Server Keep Alive, when the server lowered (or set) the client's keep-alive. */
  serverKeepAlive: number | undefined
  /** Enhanced authentication: the method's name and factory. */
  authMethod: string | undefined
  authFactory: AuthMethodFactory | undefined
}

export type ConnectVerdict =
  | AcceptedConnect
  /** Malformed, or a protocol error: the connection closes without CONNACK. */
  | { kind: 'violation'; error: MqttError }
  /** CONNACK with this reason code, then close; `clientId` when one was decided already. */
  | { kind: 'refuse'; reasonCode: number; why: string; clientId?: string }
  /** Refused as an authentication failure (counted, `auth-failed` emitted). */
  | { kind: 'auth-failed'; reasonCode: number; why: string }

function violation(error: MqttError): ConnectVerdict {
  return { kind: 'violation', error }
}

/**
 * The protocol level of a CONNECT frame, from its protocol name and level, read before mqtt-packet (which
 * cannot answer an unknown level) [MQTT-3.1.2-1] [MQTT-3.1.2-2].
 */
export function protocolLevel(
  frame: Buffer,
  bodyOffset: number,
): 3 | 4 | 5 | { error: string; unsupportedVersion: boolean } {
  const nameLen = frame.length >= bodyOffset + 2 ? (frame[bodyOffset]! << 8) | frame[bodyOffset + 1]! : -1
  const levelPos = bodyOffset + 2 + nameLen
  if (nameLen < 0 || levelPos >= frame.length)
    return { error: 'malformed CONNECT', unsupportedVersion: false }
  const name = frame.toString('latin1', bodyOffset + 2, levelPos)
  const level = frame[levelPos]! & 0x7f
  if (name !== 'MQTT' && name !== 'MQIsdp')
    return { error: 'unknown protocol name', unsupportedVersion: false }
  if ((name === 'MQTT' && level !== 4 && level !== 5) || (name === 'MQIsdp' && level !== 3)) {
    return { error: 'unsupported protocol version', unsupportedVersion: true }
  }
  return level as 3 | 4 | 5
}

/** Everything about a CONNECT that is decided before authentication, in the order the specification checks it. */
export function checkConnect(
  host: HandshakeHost,
  packet: ConnectPacket,
  version: number,
  connectionId: string,
): ConnectVerdict {
  const v5 = version === 5
  const props = packet.properties
  if (
    !isValidUtf8String(packet.clientId) ||
    (packet.username !== undefined && !isValidUtf8String(packet.username))
  ) {
    return violation(new MalformedPacketError('CONNECT string is not valid UTF-8'))
  }
  if (!v5 && packet.password !== undefined && packet.username === undefined) {
    return violation(new ProtocolError('password without user name')) // [MQTT-3.1.2-22]
  }
  let authFactory: AuthMethodFactory | undefined
  let authMethod: string | undefined
  if (v5 && props) {
    if (props.receiveMaximum === 0) return violation(new ProtocolError('receive maximum 0'))
    if (props.maximumPacketSize === 0) return violation(new ProtocolError('maximum packet size 0'))
    if (props.authenticationMethod !== undefined) {
      const methods = host.authenticationMethods
      authFactory = Object.hasOwn(methods, props.authenticationMethod)
        ? methods[props.authenticationMethod]
        : undefined
      if (authFactory === undefined) {
        return {
          kind: 'auth-failed',
          reasonCode: ReasonCode.BadAuthenticationMethod,
          why: `authentication method ${props.authenticationMethod} is not supported`,
        }
      }
      authMethod = props.authenticationMethod
    } else if (props.authenticationData !== undefined) {
      // MQTT 5 section 3.1.2.11.10: Authentication Data without a method.
      return violation(new ProtocolError('authentication data without a method'))
    }
  }
  const will = packet.will
  if (will) {
    if (!isValidUtf8String(will.topic) || !isValidTopicName(will.topic)) {
      if (v5) return { kind: 'refuse', reasonCode: ReasonCode.TopicNameInvalid, why: 'invalid will topic' }
      return violation(new ProtocolError('invalid will topic'))
    }
    if (
      v5 &&
      will.properties?.payloadFormatIndicator === true &&
      !isUtf8(Buffer.isBuffer(will.payload) ? will.payload : Buffer.from(will.payload))
    ) {
      // MQTT 5 section 3.1.3.2.3: a will payload flagged UTF-8 must be UTF-8.
      return {
        kind: 'refuse',
        reasonCode: ReasonCode.PayloadFormatInvalid,
        why: 'will payload is not valid UTF-8',
      }
    }
  }

  // Client identifier [MQTT-3.1.3-6..9].
  let clientId = packet.clientId
  let assigned: string | undefined
  if (clientId.length === 0) {
    if (v5 || (version === 4 && packet.clean)) {
      clientId = assigned = `auto-${randomUUID()}`
      if (!v5) assigned = undefined
    } else {
      return {
        kind: 'refuse',
        reasonCode: ReasonCode.ClientIdentifierNotValid,
        why: 'empty client id without clean session',
      }
    }
  }
  const durable = v5 ? (props?.sessionExpiryInterval ?? 0) > 0 : !packet.clean
  const state = host.state.bind(host)
  if (
    (durable && !sessionKeysFit(state, clientId)) ||
    (will && !state(WILLS_STORE).accepts(willKey(clientId, connectionId)))
  ) {
    // Its session or will could not be stored: refused now, clearly, not with a storage error later.
    return {
      kind: 'refuse',
      reasonCode: ReasonCode.ClientIdentifierNotValid,
      why: 'client identifier too long for a persistent session or will',
      clientId,
    }
  }

  // Keep alive [MQTT-3.1.2-24]; v5 Server Keep Alive [MQTT-3.2.2-21].
  let keepAlive = packet.keepalive ?? 0
  let serverKeepAlive: number | undefined
  const max = host.maxKeepAlive
  if (max > 0 && max < 65535 && (keepAlive === 0 || keepAlive > max)) {
    if (v5) serverKeepAlive = keepAlive = max
    else if (keepAlive > max) {
      return {
        kind: 'refuse',
        reasonCode: ReasonCode.ClientIdentifierNotValid,
        why: 'keep alive above maximum',
        clientId,
      }
    }
  }
  return { kind: 'ok', clientId, assigned, keepAlive, serverKeepAlive, authMethod, authFactory }
}

/** Who the client is; null when the connection closed during an enhanced-authentication exchange. */
export type Authentication = { user: User; data?: Uint8Array } | { failed: number; why: string } | null

/**
 * A CONNECT without an authentication method, client certificate or user name, answered at once (no
 * promise); undefined when `authenticateConnect` has to run.
 */
export function anonymousConnect(
  host: HandshakeHost,
  packet: ConnectPacket,
  info: ConnectionInfo,
  noMethod: boolean,
): Authentication | undefined {
  if (!noMethod || info.certificateUser !== undefined || packet.username !== undefined) return undefined
  if (host.requireAuthentication) return ANONYMOUS_REFUSED
  const user = host.runtime.anonymous()
  return user === null ? ANONYMOUS_REFUSED : { user }
}

const ANONYMOUS_REFUSED = { failed: ReasonCode.NotAuthorized, why: 'anonymous access refused' } as const

/**
 * Authenticates a CONNECT: by an enhanced-authentication exchange (`enhanced`, run by the connection),
 * a client certificate, a user name and password, or as the anonymous user.
 */
export async function authenticateConnect(
  host: HandshakeHost,
  packet: ConnectPacket,
  info: ConnectionInfo,
  enhanced: (() => Promise<Exclude<AuthResult, { status: 'continue' }> | null>) | undefined,
): Promise<Authentication> {
  const runtime = host.runtime
  const username = packet.username
  try {
    if (enhanced !== undefined) {
      const result = await enhanced()
      if (result === null) return null
      if (result.status !== 'success') {
        return {
          failed: result.reasonCode ?? ReasonCode.NotAuthorized,
          why: result.reason ?? 'authentication failed',
        }
      }
      return result.data === undefined ? { user: result.user } : { user: result.user, data: result.data }
    }
    if (info.certificateUser !== undefined) {
      const user = await runtime.findUser(info.certificateUser)
      return user === null
        ? { failed: ReasonCode.BadUserNameOrPassword, why: 'unknown certificate user' }
        : { user }
    }
    if (username !== undefined) {
      const password = packet.password ? packet.password.toString('utf8') : ''
      const user = await runtime.authenticate(username, password, info.remoteAddress)
      return user === null
        ? { failed: ReasonCode.BadUserNameOrPassword, why: 'bad user name or password' }
        : { user }
    }
    const user = host.requireAuthentication ? null : runtime.anonymous()
    return user === null ? { failed: ReasonCode.NotAuthorized, why: 'anonymous access refused' } : { user }
  } catch (err) {
    const rc = reasonCodeFor(err)
    // Back-off after failed attempts (0x89 server busy; 3.1.1: 0x03) is no fault: the runtime reports it.
    if (rc !== ReasonCode.ServerBusy) host.logger.warn({ err }, 'mqtt: authentication failed')
    return {
      failed: rc,
      why: (rc === ReasonCode.ServerBusy ? errorReason(err) : undefined) ?? 'authentication error',
    }
  }
}

/** The will of a CONNECT as it is stored (published later as its owner). */
export function willOf(
  packet: ConnectPacket,
  clientId: string,
  owner: SessionOwner,
  v5: boolean,
  contentType: string | undefined,
): StoredWill | null {
  const will = packet.will
  if (!will) return null
  const willProps = will.properties
  const stored: StoredWill = {
    clientId,
    username: owner,
    topic: will.topic,
    payload: Buffer.isBuffer(will.payload) ? will.payload : Buffer.from(will.payload),
    qos: (will.qos ?? 0) as 0 | 1 | 2,
    retain: will.retain ?? false,
    delay: v5 ? (willProps?.willDelayInterval ?? 0) : 0,
    dueAt: null,
  }
  const ct = willProps?.contentType ?? contentType
  if (ct !== undefined) stored.contentType = ct
  if (willProps) {
    // Message expiry, payload format, response topic, correlation data and user properties travel
    // with the will message like PUBLISH properties (MQTT 5 section 3.1.3.2).
    const { willDelayInterval: _d, contentType: _c, ...rest } = willProps
    if (Object.keys(rest).length > 0) stored.properties = rest
  }
  return stored
}

/** The properties of a v5 CONNACK that accepts the connection. */
export function connackProperties(
  host: HandshakeHost,
  packet: ConnectPacket,
  accepted: AcceptedConnect,
  session: SessionInfo,
  authData: Uint8Array | undefined,
): ConnackPacket['properties'] {
  const properties: ConnackPacket['properties'] = {
    topicAliasMaximum: host.topicAliasMaximum,
    maximumPacketSize: host.maxPacketSize,
    wildcardSubscriptionAvailable: true,
    subscriptionIdentifiersAvailable: true,
    sharedSubscriptionAvailable: true,
    retainAvailable: true,
  }
  if (host.receiveMaximum < 65535) properties.receiveMaximum = host.receiveMaximum
  if (accepted.assigned !== undefined) properties.assignedClientIdentifier = accepted.assigned
  if (accepted.serverKeepAlive !== undefined) properties.serverKeepAlive = accepted.serverKeepAlive
  if (packet.properties?.requestResponseInformation === true && host.responseInformation !== false) {
    const info = host.responseInformation(session)
    if (info !== undefined) properties.responseInformation = info
  }
  if (accepted.authMethod !== undefined) {
    properties.authenticationMethod = accepted.authMethod
    if (authData !== undefined) properties.authenticationData = Buffer.from(authData)
  }
  return properties
}

/** The first value of a v5 user property (`accept`, `content-type`). */
export function firstUserProperty(
  props: { userProperties?: Record<string, string | string[]> } | undefined,
  name: string,
): string | undefined {
  const v = props?.userProperties?.[name]
  return Array.isArray(v) ? v[0] : v
}
