/**
 * Errors of @proj/mqtt and the one table that maps runtime error codes to MQTT reason codes.
 * Domain errors carry a stable string `code`; the MQTT reason code lives here, in the transport.
 */

/** MQTT 5 reason codes the broker sends (MQTT 5.0 section 2.4, table 2-6). */
export const ReasonCode = {
  Success: 0x00,
  GrantedQoS1: 0x01,
  GrantedQoS2: 0x02,
  DisconnectWithWill: 0x04,
  NoMatchingSubscribers: 0x10,
  NoSubscriptionExisted: 0x11,
  ContinueAuthentication: 0x18,
  ReAuthenticate: 0x19,
  UnspecifiedError: 0x80,
  MalformedPacket: 0x81,
  ProtocolError: 0x82,
  ImplementationSpecificError: 0x83,
  UnsupportedProtocolVersion: 0x84,
  ClientIdentifierNotValid: 0x85,
  BadUserNameOrPassword: 0x86,
  NotAuthorized: 0x87,
  ServerUnavailable: 0x88,
  ServerBusy: 0x89,
  Banned: 0x8a,
  ServerShuttingDown: 0x8b,
  BadAuthenticationMethod: 0x8c,
  KeepAliveTimeout: 0x8d,
  SessionTakenOver: 0x8e,
  TopicFilterInvalid: 0x8f,
  TopicNameInvalid: 0x90,
  PacketIdentifierInUse: 0x91,
  PacketIdentifierNotFound: 0x92,
  ReceiveMaximumExceeded: 0x93,
  TopicAliasInvalid: 0x94,
  PacketTooLarge: 0x95,
  MessageRateTooHigh: 0x96,
  QuotaExceeded: 0x97,
  AdministrativeAction: 0x98,
  PayloadFormatInvalid: 0x99,
  RetainNotSupported: 0x9a,
  QoSNotSupported: 0x9b,
  UseAnotherServer: 0x9c,
  ServerMoved: 0x9d,
  SharedSubscriptionsNotSupported: 0x9e,
  ConnectionRateExceeded: 0x9f,
  MaximumConnectTime: 0xa0,
  SubscriptionIdentifiersNotSupported: 0xa1,
  WildcardSubscriptionsNotSupported: 0xa2,
} as const

export type ReasonCodeValue = (typeof ReasonCode)[keyof typeof ReasonCode]

/** MQTT 3.1 / 3.1.1 CONNACK return codes (3.1.1 section 3.2.2.3). */
export const ConnackReturnCode = {
  Accepted: 0,
  UnacceptableProtocolVersion: 1,
  IdentifierRejected: 2,
  ServerUnavailable: 3,
  BadUserNameOrPassword: 4,
  NotAuthorized: 5,
} as const

/** v5 CONNACK reason code -> the closest v3.1.1 return code. */
export function v3ConnackCode(reason: number): number {
  switch (reason) {
    case ReasonCode.Success:
      return ConnackReturnCode.Accepted
    case ReasonCode.UnsupportedProtocolVersion:
      return ConnackReturnCode.UnacceptableProtocolVersion
    case ReasonCode.ClientIdentifierNotValid:
      return ConnackReturnCode.IdentifierRejected
    case ReasonCode.BadUserNameOrPassword:
      return ConnackReturnCode.BadUserNameOrPassword
    case ReasonCode.NotAuthorized:
    case ReasonCode.Banned:
    case ReasonCode.BadAuthenticationMethod:
    case ReasonCode.QuotaExceeded:
      return ConnackReturnCode.NotAuthorized
    default:
      return ConnackReturnCode.ServerUnavailable
  }
}

export type MqttErrorCode =
  | 'MQTT_PROTOCOL_ERROR'
  | 'MQTT_MALFORMED_PACKET'
  | 'MQTT_PACKET_TOO_LARGE'
  | 'MQTT_TOPIC_INVALID'
  | 'MQTT_TOPIC_ALIAS_INVALID'
  | 'MQTT_RECEIVE_MAXIMUM_EXCEEDED'
  | 'MQTT_KEEP_ALIVE_TIMEOUT'
  | 'MQTT_CONNECT_TIMEOUT'
  | 'MQTT_SESSION_TAKEN_OVER'
  | 'MQTT_SERVER_SHUTTING_DOWN'

/** Base class: every broker error carries the MQTT 5 reason code to send (DISCONNECT / CONNACK / ack). */
export class MqttError extends Error {
  override name = 'MqttError'
  readonly code: MqttErrorCode
  readonly reasonCode: number
  constructor(code: MqttErrorCode, reasonCode: number, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
    this.reasonCode = reasonCode
  }
}

/** A violation of the protocol by the client: the connection is closed (v5: DISCONNECT with `reasonCode` first). */
export class ProtocolError extends MqttError {
  override name = 'ProtocolError'
  constructor(
    message: string,
    reasonCode: number = ReasonCode.ProtocolError,
    code: MqttErrorCode = 'MQTT_PROTOCOL_ERROR',
  ) {
    super(code, reasonCode, message)
  }
}

/** Bytes that are not a well-formed MQTT packet. */
export class MalformedPacketError extends MqttError {
  override name = 'MalformedPacketError'
  constructor(message: string, options?: ErrorOptions) {
    super('MQTT_MALFORMED_PACKET', ReasonCode.MalformedPacket, message, options)
  }
}

/** A packet larger than the server's maximum packet size. */
export class PacketTooLargeError extends MqttError {
  override name = 'PacketTooLargeError'
  constructor(size: number, maximum: number) {
    super(
      'MQTT_PACKET_TOO_LARGE',
      ReasonCode.PacketTooLarge,
      `packet of ${size} bytes exceeds the maximum of ${maximum}`,
    )
  }
}

/**
 * The runtime's ResourceError codes -> MQTT 5 reason codes (PUBACK, PUBREC, SUBACK, CONNACK).
 * The runtime throws errors with a string `code`; anything not listed is "unspecified error".
 */
export const runtimeErrorReasonCodes: Readonly<Record<string, number>> = {
  FORBIDDEN: ReasonCode.NotAuthorized,
  UNAUTHORIZED: ReasonCode.NotAuthorized,
  NOT_AUTHORIZED: ReasonCode.NotAuthorized,
  INVALID: ReasonCode.PayloadFormatInvalid,
  VALIDATION: ReasonCode.PayloadFormatInvalid,
  BAD_REQUEST: ReasonCode.PayloadFormatInvalid,
  UNSUPPORTED_MEDIA_TYPE: ReasonCode.PayloadFormatInvalid,
  NOT_FOUND: ReasonCode.TopicNameInvalid,
  TOPIC_INVALID: ReasonCode.TopicNameInvalid,
  // A well-formed topic longer than storage keeps as a key: "not accepted by this server" (MQTT 5
  // section 2.4), not a payload problem; SUBACK turns it into 0x8F like other topic refusals.
  KEY_TOO_LONG: ReasonCode.TopicNameInvalid,
  CONFLICT: ReasonCode.ImplementationSpecificError,
  PRECONDITION_FAILED: ReasonCode.ImplementationSpecificError,
  TOO_LARGE: ReasonCode.PacketTooLarge,
  QUOTA_EXCEEDED: ReasonCode.QuotaExceeded,
  TOO_MANY_REQUESTS: ReasonCode.ServerBusy,
  // a write the cluster could not replicate in time: PUBACK/PUBREC have no "server unavailable" (0x88 is
  // for CONNACK/DISCONNECT), so it is the unspecified error; the client may send it again
  UNAVAILABLE: ReasonCode.UnspecifiedError,
  CLOSED: ReasonCode.ServerUnavailable,
}

/** MQTT 5 reason code for an error thrown by the runtime (or by the broker itself). */
export function reasonCodeFor(error: unknown): number {
  if (error instanceof MqttError) return error.reasonCode
  const code = (error as { code?: unknown } | null)?.code
  if (typeof code === 'string') {
    const mapped = runtimeErrorReasonCodes[code]
    if (mapped !== undefined) return mapped
    // Codes are namespaced in some packages (CODEC_UNSUPPORTED_MEDIA_TYPE, TOPIC_INVALID_FILTER).
    for (const key in runtimeErrorReasonCodes) {
      if (code.endsWith(`_${key}`) || code.startsWith(`${key}_`)) return runtimeErrorReasonCodes[key]!
    }
  }
  return ReasonCode.UnspecifiedError
}

/** SUBACK return code for a refused subscription: v5 gets the reason code, v3.1.1 only knows 0x80. */
export function subackFailureCode(error: unknown, protocolVersion: number): number {
  if (protocolVersion < 5) return 0x80
  const rc = reasonCodeFor(error)
  // A refused filter (a bad or unsupported query in `Dog/?…`) is the filter's fault: SUBACK has no payload.
  return rc === ReasonCode.TopicNameInvalid || rc === ReasonCode.PayloadFormatInvalid
    ? ReasonCode.TopicFilterInvalid
    : rc
}

/** The reason string for a refusal by the runtime: its message for domain errors, nothing for internal ones. */
export function errorReason(err: unknown): string | undefined {
  if (err instanceof Error && typeof (err as { code?: unknown }).code === 'string') return err.message
  return undefined
}
