/**
 * SUBSCRIBE and UNSUBSCRIBE of one connection (MQTT 5 sections 3.8 and 3.10): each filter checked and
 * opened as a runtime subscription (retained values per Retain Handling, identifiers, No Local, Retain As
 * Published, shared groups), SUBACK/UNSUBACK once a durable session's record is written; and, when a
 * durable session resumes, its subscriptions reopened from their cursors.
 */
import { isSharedFilter } from '@proj/topic-matcher'
import { firstUserProperty } from './connect-handshake.js'
import type { ConnectionHost } from './connection-host.js'
import type { CursorPosition } from './cursor-position.js'
import {
  errorReason,
  MalformedPacketError,
  type MqttError,
  ProtocolError,
  ReasonCode,
  subackFailureCode,
} from './errors.js'
import { type FaultSink, settle } from './fault.js'
import type { SessionSubscription } from './outbound-flow.js'
import type {
  Packet,
  SubackPacket,
  SubscribePacket,
  Subscription,
  UnsubackPacket,
  UnsubscribePacket,
} from './packets.js'
import type { RequestContext, Runtime } from './runtime.js'
import type { Session } from './session.js'
import type { SessionOutlet } from './session-outlet.js'
import { isValidTopicFilter, isValidUtf8String } from './topic-validate.js'

/** What subscribe handling needs of its connection. */
export interface SubscribePeer extends FaultSink, SessionOutlet {
  readonly v5: boolean
  readonly version: number
  readonly clientId: string
  readonly ctx: RequestContext
  readonly session: Session | null
  /** A packet generated to fit the client's Maximum Packet Size (empty when it cannot). */
  sized(packet: Packet): Buffer
  /** A reason string for an acknowledgement, when the client did not turn problem information off. */
  ackReason(reason: string | undefined): string | undefined
  protocolViolation(error: MqttError): void
  /** A promise while the socket is backed up (a subscription's initial delivery waits for it); undefined otherwise. */
  drained(): Promise<void> | undefined
}

export class SubscribeFlows {
  private readonly pace: () => Promise<void> | undefined

  constructor(
    private readonly peer: SubscribePeer,
    private readonly host: ConnectionHost,
  ) {
    this.pace = () => peer.drained()
  }

  /** A resumed durable session: catch up from the change log after each cursor, then go live. */
  resubscribe(session: Session): void {
    for (const sub of session.subscriptions.values()) {
      if (sub.closed || sub.handle !== null) continue
      // Shared subscriptions do not replay: other members received what was published meanwhile.
      // Cursor 0 (the log was empty at subscribe time) replays from the start.
      const after = sub.shared ? undefined : session.catchUpCursor(sub)
      settle(this.peer, this.openSubscription(sub, false, after), (rc) => {
        if (rc >= 0x80) session.refused(sub, true)
      })
    }
    session.fillWindow()
  }

  onSubscribe(packet: SubscribePacket): void {
    const session = this.peer.session!
    const props = packet.properties
    const subId = props?.subscriptionIdentifier
    if (subId === 0) {
      this.peer.protocolViolation(new ProtocolError('subscription identifier 0'))
      return
    }
    if (packet.subscriptions.length === 0) {
      // [MQTT-3.8.3-3] at least one topic filter.
      this.peer.protocolViolation(new ProtocolError('SUBSCRIBE without topic filters'))
      return
    }
    const accept = firstUserProperty(props, 'accept')
    for (const s of packet.subscriptions) {
      if (!isValidUtf8String(s.topic)) {
        this.peer.protocolViolation(new MalformedPacketError('topic filter is not valid UTF-8'))
        return
      }
      if (this.peer.v5 && s.nl === true && isSharedFilter(s.topic)) {
        // [MQTT-3.8.3-4] No Local on a shared subscription is a protocol error.
        this.peer.protocolViolation(new ProtocolError('no local on a shared subscription'))
        return
      }
    }
    const reasons: string[] = []
    const codes: Promise<number>[] = []
    for (const s of packet.subscriptions) codes.push(this.subscribeOne(session, s, subId, accept, reasons))
    settle(this.peer, Promise.all(codes), (granted) => {
      this.afterSave(session, () => {
        if (!this.peer.connected) return
        const suback = { cmd: 'suback', messageId: packet.messageId, granted } as SubackPacket
        const reason = this.peer.ackReason(reasons.length > 0 ? reasons.join('; ') : undefined)
        if (reason !== undefined) suback.properties = { reasonString: reason }
        const buf = this.peer.sized(suback)
        if (buf.length > 0) this.peer.write(buf)
      })
    })
  }

  /**
   * Runs `reply` once a durable session's record is written, or failed to be (track() logged it):
   * the subscriptions are live either way, so the client gets its acknowledgement.
   */
  private afterSave(session: Session, reply: () => void): void {
    if (session.durable) settle(this.peer, session.save(), reply, reply)
    else reply()
  }

  private subscribeOne(
    session: Session,
    s: Subscription,
    subId: number | undefined,
    accept: string | undefined,
    reasons: string[],
  ): Promise<number> {
    const v5 = this.peer.v5
    // v3.1.1 clients may use $share too (as in Mosquitto).
    if (!isValidTopicFilter(s.topic, true)) {
      reasons.push(`invalid topic filter ${s.topic}`)
      return Promise.resolve(v5 ? ReasonCode.TopicFilterInvalid : 0x80)
    }
    const previous = session.subscriptions.get(s.topic)
    const rh = s.rh ?? 0
    const sub = session.subscription({
      filter: s.topic,
      qos: s.qos,
      nl: v5 ? (s.nl ?? false) : false,
      rap: v5 ? (s.rap ?? false) : false,
      rh,
      id: subId,
      accept,
      cursor: previous?.cursor ?? 0,
      ...(previous?.issuer !== undefined ? { issuer: previous.issuer } : {}),
    })
    // [MQTT-3.8.4-3] a subscription with the same filter replaces the old one.
    const existing = session.addSubscription(sub)
    // Retain Handling [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11]; shared: never (MQTT 5 section 4.8.2).
    const sendRetained = !sub.shared && (rh === 0 || (rh === 1 && existing === undefined))
    return this.openSubscription(sub, sendRetained, undefined, reasons).then((rc) => {
      if (rc >= 0x80) session.refused(sub, false)
      return rc
    })
  }

  /** Opens the runtime subscription for `sub`; resolves to the granted QoS or a failure code. */
  private openSubscription(
    sub: SessionSubscription,
    retained: boolean,
    after: CursorPosition | undefined,
    reasons?: string[],
  ): Promise<number> {
    const options: Parameters<Runtime['subscribe']>[2] = {
      retained,
      qos: sub.qos,
      noLocal: sub.nl,
      retainAsPublished: sub.rap,
    }
    if (after !== undefined) {
      options.after = after.cursor
      // a cursor another node issued (ack: local) is read with it: no repeat, no gap
      if (after.issuer !== undefined) options.issuer = after.issuer
    }
    // retained messages and the replay are streamed as the client reads them
    if (retained || after !== undefined) options.pace = this.pace
    if (sub.id !== undefined) options.subscriptionId = sub.id
    if (sub.shared) {
      // The group's round robin skips this member while its window is full.
      const session = this.peer.session!
      options.canDeliver = () => session.canTake(sub)
    }
    return this.host.runtime.subscribe(sub.filter, sub.listener, options, this.peer.ctx).then(
      (handle) => {
        this.peer.session!.opened(sub, handle, after === undefined, this.peer)
        return sub.qos
      },
      (err) => {
        this.host.faultLog.warn(
          'subscribe-refused',
          {
            err,
            clientId: this.peer.clientId,
            filter: sub.filter,
            remoteAddress: this.peer.info.remoteAddress,
          },
          `mqtt: subscribe to ${sub.filter} by ${this.peer.clientId} refused: ${(err as Error).message}`,
        )
        const reason = errorReason(err)
        if (reason !== undefined) reasons?.push(reason)
        return subackFailureCode(err, this.peer.version)
      },
    )
  }

  onUnsubscribe(packet: UnsubscribePacket): void {
    if (packet.unsubscriptions.length === 0) {
      // [MQTT-3.10.3-2] at least one topic filter.
      this.peer.protocolViolation(new ProtocolError('UNSUBSCRIBE without topic filters'))
      return
    }
    const session = this.peer.session!
    const granted: number[] = []
    for (const filter of packet.unsubscriptions) {
      granted.push(session.removeSubscription(filter) ? ReasonCode.Success : ReasonCode.NoSubscriptionExisted)
    }
    const reply = () => {
      if (!this.peer.connected) return
      const ack = { cmd: 'unsuback', messageId: packet.messageId, granted } as UnsubackPacket
      const buf = this.peer.sized(ack)
      if (buf.length > 0) this.peer.write(buf)
    }
    this.afterSave(session, reply)
  }
}
