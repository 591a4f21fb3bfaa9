/**
 * Named steps of the QoS 1/2 flows, after which a test may stop the process (BrokerOptions.onFlowStep) to
 * check that a restart on the same data loses nothing acknowledged and delivers no QoS 2 message twice.
 * Each `*-persisted` step runs once the state change is committed (and synced) and before the packet that
 * depends on it is written; each `*-sent` step runs once that packet was handed to the socket.
 */
export const FLOW_STEPS = [
  /** CONNECT: the session record (and the will) committed, CONNACK not written. */
  'connect-persisted',
  /** Normal DISCONNECT: the will's deletion committed, the connection not yet closed. */
  'will-discard-persisted',
  /** Outbound QoS 1/2: the in-flight entry committed, PUBLISH not written. */
  'outbound-publish-persisted',
  'outbound-publish-sent',
  /** Outbound QoS 2: PUBREC received, the PUBREL state committed, PUBREL not written. */
  'outbound-pubrel-persisted',
  'outbound-pubrel-sent',
  /** Outbound: PUBACK / PUBCOMP received, the cursor and the removal of the in-flight entry committed. */
  'outbound-complete-persisted',
  /** Inbound QoS 1/2: the message (and, QoS 2, its packet id) committed, PUBACK / PUBREC not written. */
  'inbound-publish-persisted',
  'inbound-puback-sent',
  'inbound-pubrec-sent',
  /** Inbound QoS 2: PUBREL received, the packet id forgotten durably, PUBCOMP not written. */
  'inbound-pubrel-persisted',
  'inbound-pubcomp-sent',
] as const

export type FlowStep = (typeof FLOW_STEPS)[number]

/** Called at each step (tests only; unset in production, so the flows pay nothing for it). */
export type FlowStepHook = (step: FlowStep) => void
