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
export type { BrokerRuntime } from './runtime.js'
export type { Broker, BrokerEvents, BrokerOptions, ConnectionInfo, Logger, SessionInfo } from './types.js'
