/**
 * One connection's inbound PUBLISH flows (MQTT 5 section 4.3): QoS 0, 1 and 2 handed to the runtime,
 * acknowledgements sent once committed (in arrival order: ack-queue.ts),
 * the receive quota [MQTT-3.3.4-9], inbound topic aliases, PUBREL/PUBCOMP, PINGRESP as a barrier after
 * the publishes before it, and back-pressure (too many uncommitted publishes pause the stream).
 */
import { isUtf8 } from 'node:buffer'
import type { Duplex } from 'node:stream'
import { type AckEntry, AckQueue, NO_ACK, PONG } from './ack-queue.js'
import type { ConnectionHost } from './connection-host.js'
import { errorReason, type MqttError, ProtocolError, ReasonCode, reasonCodeFor } from './errors.js'
import { type FaultSink, guarded, settle } from './fault.js'
import type { FlowStep } from './flow-steps.js'
import {
  encodeAck,
  type InboundPublish,
  PINGRESP,
  PUBACK,
  PUBCOMP,
  PUBREC,
  parsePublish,
  TopicCache,
} from './packets.js'
import { RefusalLog } from './refusal-log.js'
import {
  DELIVERED,
  type EventMeta,
  type PublishMessage,
  type PublishOptions,
  type RequestContext,
} from './runtime.js'
import type { Session } from './session.js'
import { packetKey, QOS2_STORE } from './session-store.js'
import type { DoorStats } from './stats.js'
import { isValidTopicName } from './topic-validate.js'

/** Inbound publishes not yet committed before the stream is paused (back-pressure). */
const PAUSE_AT = 1024
const RESUME_AT = 256
/** The topic was checked here (to close with 0x90 as MQTT requires), so the runtime skips its own check. */
const TOPIC_CHECKED: PublishOptions = { topicChecked: true }

/** What the inbound flows need of their connection. */
export interface InboundPeer extends FaultSink {
  readonly v5: boolean
  readonly clientId: string
  readonly ctx: RequestContext
  /** The connection's content type (CONNECT user property `content-type`). */
  readonly contentType: string | undefined
  readonly counters: DoorStats
  readonly session: Session | null
  readonly stream: Duplex
  readonly closed: boolean
  write(packet: Buffer): void
  noteSent(step: FlowStep): void
  /** An acknowledgement with an optional reason string (dropped when it would not fit). */
  ack(type: number, packetId: number, reasonCode: number, reason?: string): Buffer
  protocolViolation(error: MqttError): void
  close(reason: string): void
}

export class InboundFlows {
  /** Inbound topic aliases (alias -> topic); null when the broker accepts none from this client. */
  private readonly aliases: Map<number, string> | null
  /** The last topic this client published to, kept as a string. */
  private readonly topics = new TopicCache()
  /** The last topic name found valid (the cache hands out the same string: not checked again). */
  private validTopic: string | undefined
  private readonly acks: AckQueue
  private inflightIn = 0
  private quotaUsed = 0
  private paused = false
  private refusals: RefusalLog | null = null
  /** The meta of this client's messages without properties, by QoS (made on first use). */
  private plainMetas: EventMeta[] | null = null

  constructor(
    private readonly peer: InboundPeer,
    private readonly host: ConnectionHost,
    acceptsAliases: boolean,
  ) {
    this.aliases = acceptsAliases ? new Map() : null
    this.acks = new AckQueue(
      peer,
      (entry, err) => this.qos1Settled(entry, err),
      (count) => {
        this.quotaUsed = Math.max(0, this.quotaUsed - count)
      },
    )
  }

  /** The PUBLISH in bytes `start` to `end` of `buf`, its body from `body`. */
  onPublish(buf: Buffer, start: number, body: number, end: number): void {
    const p = parsePublish(buf, start, body, end, this.peer.v5, this.topics)
    if (!('topic' in p)) {
      this.peer.protocolViolation(p)
      return
    }
    let topic = p.topic
    const props = p.properties
    if (props !== undefined && props.topicAlias !== undefined) {
      const alias = props.topicAlias
      if (alias === 0 || alias > this.host.topicAliasMaximum || this.aliases === null) {
        this.peer.protocolViolation(
          new ProtocolError('topic alias out of range', ReasonCode.TopicAliasInvalid),
        )
        return
      }
      if (topic.length === 0) {
        const known = this.aliases.get(alias)
        if (known === undefined) {
          this.peer.protocolViolation(new ProtocolError('unknown topic alias'))
          return
        }
        topic = known
      } else {
        this.aliases.set(alias, topic)
      }
      delete props.topicAlias
    }
    if (topic !== this.validTopic) {
      if (!isValidTopicName(topic)) {
        // [MQTT-3.3.2-2] wildcards in a topic name; v5 0x90.
        this.peer.protocolViolation(new ProtocolError('invalid topic name', ReasonCode.TopicNameInvalid))
        return
      }
      this.validTopic = topic
    }
    const qos = p.qos
    this.peer.counters.messagesIn[qos]++
    if (qos > 0 && this.peer.v5) {
      const known =
        qos === 2 &&
        (this.peer.session!.hasInboundQos2(p.packetId) ||
          this.peer.session!.pendingInboundQos2(p.packetId) !== undefined)
      if (!known && this.quotaUsed >= this.host.receiveMaximum) {
        // [MQTT-3.3.4-9]
        this.peer.protocolViolation(
          new ProtocolError(
            'receive maximum exceeded',
            ReasonCode.ReceiveMaximumExceeded,
            'MQTT_RECEIVE_MAXIMUM_EXCEEDED',
          ),
        )
        return
      }
    }
    if (props?.payloadFormatIndicator === true && !isUtf8(p.payload)) {
      // MQTT 5 section 3.3.2.3.2: a payload flagged UTF-8 that is not is refused with 0x99 in the
      // acknowledgement (in order with the others), or by DISCONNECT for QoS 0 (nothing to acknowledge).
      const why = 'payload format indicator says UTF-8 but the payload is not'
      if (qos === 0) {
        this.peer.protocolViolation(new ProtocolError(why, ReasonCode.PayloadFormatInvalid))
        return
      }
      this.acks.finish(
        this.acks.push(qos === 1 ? PUBACK : PUBREC, p.packetId),
        ReasonCode.PayloadFormatInvalid,
        why,
      )
      return
    }
    if (qos === 0) this.publishQos0(topic, p)
    else if (qos === 1) this.publishQos1(topic, p)
    else this.publishQos2(topic, p)
  }

  /** The runtime's message of `p`: `p` itself, with its meta and content type filled in (no object more). */
  private message(p: InboundPublish): PublishMessage {
    const props = p.properties
    let contentType = this.peer.contentType
    let meta: EventMeta | undefined
    if (props !== undefined) {
      if (props.contentType !== undefined) {
        contentType = props.contentType
        delete props.contentType
      }
      for (const _ in props) {
        meta = { qos: p.qos, clientId: this.peer.clientId, properties: props as Record<string, unknown> }
        break
      }
    }
    // Without properties the meta is the same for every message of this client at this QoS: one object
    // each (events are read-only for everyone who receives them), frozen, so storage encodes it once.
    p.meta =
      meta ??
      ((this.plainMetas ??= [])[p.qos] ??= Object.freeze({ qos: p.qos, clientId: this.peer.clientId }))
    p.contentType = contentType
    return p
  }

  private publishQos0(topic: string, p: InboundPublish): void {
    const result = this.host.runtime.publish(topic, this.message(p), this.peer.ctx, TOPIC_CHECKED)
    this.lastPublish = result
    // Handed to every subscriber during the call and nothing stored: nothing to wait for, so no
    // continuation (closures, a promise, a microtask) per message. The hot path of a plain broker.
    if (result === DELIVERED) return
    this.publishStarted()
    // Closing on a refusal waits for the acknowledgements of the publishes before it.
    const slot = this.closesOnRefusal ? this.acks.push(NO_ACK, 0) : null
    settle(
      this.peer,
      result,
      () => {
        this.publishSettled()
        if (slot !== null) this.acks.finish(slot, 0)
      },
      (err) => {
        this.publishSettled()
        this.publishRefused(err, topic, 0)
        if (slot !== null) this.acks.finish(slot, 0, undefined, 'publish refused')
      },
    )
  }

  /** 3.1.1 with `refusedPublish: 'disconnect'`: a refused publish closes the connection instead of its acknowledgement. */
  private get closesOnRefusal(): boolean {
    return !this.peer.v5 && this.host.refusedPublish === 'disconnect'
  }

  /**
   * Whether a refused QoS 1/2 publish closes this connection instead of its acknowledgement: as above,
   * and for 3.1.1 always when the write could not be made durable (`UNAVAILABLE`: a cluster without
   * quorum), so the client resends it rather than take the PUBACK for success.
   */
  private closesOn(err: unknown): boolean {
    return this.closesOnRefusal || (!this.peer.v5 && (err as { code?: unknown })?.code === 'UNAVAILABLE')
  }

  private publishQos1(topic: string, p: InboundPublish): void {
    const ack = this.acks.push(PUBACK, p.packetId)
    ack.topic = topic
    this.quotaUsed++
    this.publishStarted()
    // Told through `ack` once committed; its place in the acknowledgement queue is the PINGREQ barrier.
    this.host.runtime.publishWith(topic, this.message(p), this.peer.ctx, TOPIC_CHECKED, ack)
  }

  /** The runtime settled a QoS 1 publish (told through its AckEntry; a throw faults this connection). */
  private qos1Settled(ack: AckEntry, err: unknown): void {
    try {
      this.publishSettled()
      if (err === undefined) {
        this.host.onFlowStep?.('inbound-publish-persisted')
        this.acks.finish(ack, 0)
        return
      }
      const rc = this.publishRefused(err, ack.topic, 1)
      if (this.peer.v5) this.acks.finish(ack, rc, errorReason(err))
      else this.acks.finish(ack, 0, undefined, this.closesOn(err) ? 'publish refused' : undefined)
    } catch (thrown) {
      this.peer.fault(thrown)
    }
  }

  private publishQos2(topic: string, p: InboundPublish): void {
    const session = this.peer.session!
    const id = p.packetId
    const ack = this.acks.push(PUBREC, id)
    if (session.hasInboundQos2(id)) {
      // A duplicate of a message already applied: acknowledge, do not apply again [MQTT-4.3.3-10].
      this.acks.finish(ack, 0)
      return
    }
    const pending = session.pendingInboundQos2(id)
    if (pending !== undefined) {
      settle(
        this.peer,
        pending,
        () =>
          this.acks.finish(
            ack,
            session.hasInboundQos2(id) ? 0 : ReasonCode.UnspecifiedError,
            session.hasInboundQos2(id) ? undefined : 'the first copy of this message was refused',
          ),
        () =>
          this.acks.finish(ack, ReasonCode.UnspecifiedError, 'the first copy of this message was refused'),
      )
      return
    }
    this.quotaUsed++
    this.publishStarted()
    const options = session.durable
      ? {
          atomic: [{ store: QOS2_STORE, key: packetKey(session.clientId, id), value: 1 }],
          topicChecked: true,
        }
      : TOPIC_CHECKED
    // Guarded callbacks: `work` always fulfils, so the PUBREL and duplicate paths waiting on it never
    // see a rejection.
    const work = this.host.runtime.publish(topic, this.message(p), this.peer.ctx, options).then(
      guarded(this.peer, () => {
        session.inboundQos2Applied(id)
        this.publishSettled()
        this.host.onFlowStep?.('inbound-publish-persisted')
        this.acks.finish(ack, 0)
      }),
      guarded(this.peer, (err: unknown) => {
        this.publishSettled()
        const rc = this.publishRefused(err, topic, 2)
        if (this.peer.v5) {
          this.quotaUsed = Math.max(0, this.quotaUsed - 1)
          this.acks.finish(ack, rc, errorReason(err))
        } else if (this.closesOn(err)) {
          this.acks.finish(ack, 0, undefined, 'publish refused')
        } else {
          session.inboundQos2Applied(id) // v3.1.1 has no refusal: complete the flow, nothing applied.
          this.acks.finish(ack, 0)
        }
      }),
    )
    this.lastPublish = work
    session.inboundQos2Started(id, work)
  }

  /**
   * A publish the runtime refused (nothing applied): emitted as `publish-refused`, logged at warn
   * (rate-limited). Returns its v5 reason code; 3.1.1 has no negative acknowledgement.
   */
  private publishRefused(err: unknown, topic: string, qos: 0 | 1 | 2): number {
    this.host.stats.dropped.refused++
    const reasonCode = reasonCodeFor(err)
    const reason = err instanceof Error ? err.message : String(err)
    const broker = this.host
    this.refusals ??= new RefusalLog(broker.logger)
    this.refusals.note({ clientId: this.peer.clientId, topic, reasonCode, reason }, err)
    broker.events.emit(
      'publish-refused',
      {
        clientId: this.peer.clientId,
        username: this.peer.session?.owner ?? undefined,
        topic,
        qos,
        reasonCode,
        reason,
      },
      this.peer.stream,
    )
    return reasonCode
  }

  onPubrel(id: number): void {
    const session = this.peer.session!
    const release = () => {
      if (!session.inboundQos2Released(id)) {
        this.peer.write(
          this.peer.ack(PUBCOMP, id, ReasonCode.PacketIdentifierNotFound, 'packet identifier not found'),
        )
        return
      }
      this.quotaUsed = Math.max(0, this.quotaUsed - 1)
      if (!session.durable && !session.persisted) {
        this.peer.write(encodeAck(PUBCOMP, id, 0, this.peer.v5))
        return
      }
      // The id is forgotten durably before PUBCOMP, so a reused id is never mistaken for a duplicate.
      settle(
        this.peer,
        this.host.track(this.host.state(QOS2_STORE).delete(packetKey(session.clientId, id))),
        () => {
          this.host.onFlowStep?.('inbound-pubrel-persisted')
          this.peer.write(encodeAck(PUBCOMP, id, 0, this.peer.v5))
          this.peer.noteSent('inbound-pubcomp-sent')
        },
        () => this.peer.close('state write failed'),
      )
    }
    const pending = session.pendingInboundQos2(id)
    if (pending !== undefined) settle(this.peer, pending, release, release)
    else release()
  }

  /**
   * The last publish handed to the runtime as a promise (QoS 0 and 2); commits complete in order, so it
   * settles after all before it. QoS 1 publishes wait in the acknowledgement queue instead.
   */
  private lastPublish: Promise<unknown> | null = null

  /**
   * PINGRESP once this client's earlier publishes (QoS 0 too) are committed: a client may use PINGREQ as a
   * barrier, as with Mosquitto, which applies a publish before it reads the next packet (a retained delete
   * followed by PINGREQ is visible to every subscription made after PINGRESP). It takes a place in the
   * acknowledgement queue, behind the QoS 1/2 acknowledgements before it, once the last promise settled.
   */
  pong(): void {
    const last = this.lastPublish
    if (last === null && this.acks.empty) {
      this.peer.write(PINGRESP)
      return
    }
    const slot = this.acks.push(PONG, 0)
    if (last === null) this.acks.finish(slot, 0)
    else
      settle(
        this.peer,
        last,
        () => this.acks.finish(slot, 0),
        () => this.acks.finish(slot, 0),
      )
  }

  /** Counts an inbound publish until it settles; too many uncommitted ones pause the stream. */
  private publishStarted(): void {
    if (++this.inflightIn >= PAUSE_AT && !this.paused) {
      this.paused = true
      this.peer.stream.pause()
    }
  }

  private publishSettled(): void {
    this.inflightIn--
    if (this.paused && this.inflightIn <= RESUME_AT) {
      this.paused = false
      if (!this.peer.closed) this.peer.stream.resume()
    }
  }
}
