/**
 * The client's acknowledgements of outbound QoS 2 messages: PUBREC moves a message to its PUBREL state,
 * and PUBREL leaves only once that state is durable (MQTT 5 section 4.3.3).
 */
import { ReasonCode } from './errors.js'
import { type FaultSink, settle } from './fault.js'
import type { FlowStep, FlowStepHook } from './flow-steps.js'
import { encodeAck, PUBREL } from './packets.js'
import type { Session } from './session.js'

/** What the PUBREC handling needs of its connection. */
export interface PubrecPeer extends FaultSink {
  readonly v5: boolean
  readonly session: Session | null
  write(packet: Buffer): void
  ack(type: number, packetId: number, reasonCode: number, reason?: string): Buffer
  noteSent(step: FlowStep): void
  close(reason: string): void
}

/** PUBREC of an outbound QoS 2 message (`rc` >= 0x80: refused, the message is done). */
export function onPubrec(
  peer: PubrecPeer,
  onFlowStep: FlowStepHook | undefined,
  id: number,
  rc: number,
): void {
  const session = peer.session!
  if (rc >= 0x80) {
    session.complete(id, 2, 'publish')
    return
  }
  const known = session.received(id)
  if (known === false) {
    peer.write(peer.ack(PUBREL, id, ReasonCode.PacketIdentifierNotFound, 'packet identifier not found'))
    return
  }
  if (known === true) {
    peer.write(encodeAck(PUBREL, id, 0, peer.v5))
    peer.noteSent('outbound-pubrel-sent')
    return
  }
  // The PUBREL state is durable before PUBREL leaves: after a crash the broker resends PUBREL, never
  // the PUBLISH of a packet id the client may already have completed (a second delivery).
  settle(
    peer,
    known,
    () => {
      onFlowStep?.('outbound-pubrel-persisted')
      peer.write(encodeAck(PUBREL, id, 0, peer.v5))
      peer.noteSent('outbound-pubrel-sent')
    },
    () => peer.close('state write failed'),
  )
}
