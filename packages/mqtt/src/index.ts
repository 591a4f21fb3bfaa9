export type { AuthContext, AuthExchange, AuthMethodFactory, AuthResult } from './auth.js'
export { createBroker } from './broker.js'
export type { MqttErrorCode, ReasonCodeValue } from './errors.js'
export {
  ConnackReturnCode,
  MalformedPacketError,
  MqttError,
  PacketTooLargeError,
  ProtocolError,
  ReasonCode,
  reasonCodeFor,
  runtimeErrorReasonCodes,
} from './errors.js'
export type { FlowStep, FlowStepHook } from './flow-steps.js'
export { FLOW_STEPS } from './flow-steps.js'
export { RateLimitedLog } from './rate-limited-log.js'
export type { BrokerRuntime } from './runtime.js'
export type { ScramOptions } from './scram.js'
export { createScramSha256 } from './scram.js'
export type { BrokerGauges, ClientSnapshot, SessionSnapshot, SubscriptionInfo } from './snapshots.js'
export type { Door, DoorStats, DroppedStats } from './stats.js'
export { BrokerStats, DOORS } from './stats.js'
export type {
  Broker,
  BrokerEvents,
  BrokerOptions,
  ClientOwnership,
  ConnectionInfo,
  Logger,
  PublishRefusal,
  SessionInfo,
} from './types.js'
