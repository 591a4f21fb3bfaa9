/**
 * The acknowledgements of one connection's inbound publishes, released in the order their packets
 * arrived [MQTT-4.6.0-2] [MQTT-4.6.0-3], whatever order their commits finish in: PUBACK, PUBREC, the
 * place of a QoS 0 publish whose refusal may close the connection, and a PINGRESP that waits for the
 * publishes before it.
 */
import { type FaultSink, guarded } from './fault.js'
import type { FlowStep } from './flow-steps.js'
import { PINGRESP, PUBACK } from './packets.js'
import type { PublishListener } from './runtime.js'

/** Released acknowledgements kept at the front of the queue before it is copied without them. */
const COMPACT_ACKS_AT = 1024

/** Holds a QoS 0 publish's place when a refusal may close the connection (nothing is sent for it). */
export const NO_ACK = 0
/** A PINGRESP's place. */
export const PONG = -1

/** Where released acknowledgements go: the connection. */
export interface AckSink extends FaultSink {
  readonly v5: boolean
  write(packet: Buffer): void
  noteSent(step: FlowStep): void
  /** An acknowledgement with an optional reason string (dropped when it would not fit). */
  ack(type: number, packetId: number, reasonCode: number, reason?: string): Buffer
  close(reason: string): void
}

/**
 * One place in the acknowledgement order. A QoS 1 publish's entry is also the listener the runtime tells
 * when the publish is committed (`publishWith`): no promise or closure per message.
 */
export class AckEntry implements PublishListener {
  reasonCode = 0
  reason: string | undefined = undefined
  done = false
  /** Instead of an acknowledgement, the connection closes here (after the ones before it went out). */
  closeReason: string | undefined = undefined
  /** The topic of a QoS 1 publish (named when it is refused). */
  topic = ''

  constructor(
    private readonly queue: AckQueue,
    /** PUBACK, PUBREC, NO_ACK or PONG. */
    readonly type: number,
    readonly packetId: number,
  ) {}

  publishSettled(error: unknown): void {
    this.queue.settled(this, error)
  }
}

export class AckQueue {
  private acks: AckEntry[] = []
  private head = 0
  /** A release of the finished acknowledgements is queued. */
  private releasing = false
  /** The queued release (one function per connection, made when first needed). */
  private releaseTask: (() => void) | null = null

  constructor(
    private readonly sink: AckSink,
    /** The runtime settled the QoS 1 publish of `entry` (a throw faults the connection). */
    readonly settled: (entry: AckEntry, error: unknown) => void,
    /** `count` acknowledgements that give back a receive-quota slot went out. */
    private readonly freed: (count: number) => void,
  ) {}

  /** No acknowledgement is waiting. */
  get empty(): boolean {
    return this.head === this.acks.length
  }

  push(type: number, packetId: number): AckEntry {
    const entry = new AckEntry(this, type, packetId)
    this.acks.push(entry)
    return entry
  }

  /**
   * Marks `entry` finished. The ones a commit completes are released together, after that commit's other
   * listeners ran (a microtask), and the plain ones go out as one buffer.
   */
  finish(entry: AckEntry, reasonCode: number, reason?: string, closeReason?: string): void {
    entry.done = true
    entry.reasonCode = reasonCode
    entry.closeReason = closeReason
    if (reasonCode >= 0x80) entry.reason = reason
    if (this.releasing || entry !== this.acks[this.head]) return
    this.releasing = true
    queueMicrotask(
      (this.releaseTask ??= guarded(this.sink, () => {
        this.releasing = false
        this.release()
      })),
    )
  }

  private release(): void {
    const acks = this.acks
    const sink = this.sink
    let head = this.head
    let freed = 0
    // plain acknowledgements (no reason string) of this run, written as one buffer
    let plain: Buffer | null = null
    let plainLength = 0
    const v5 = sink.v5
    while (head < acks.length && acks[head]!.done) {
      const a = acks[head++]!
      if (a.closeReason !== undefined) {
        if (plain !== null) sink.write(plain.subarray(0, plainLength))
        if (freed > 0) this.freed(freed)
        sink.close(a.closeReason)
        return
      }
      if (a.type === NO_ACK) continue
      if (a.type === PONG || a.reason !== undefined) {
        if (plain !== null) sink.write(plain.subarray(0, plainLength))
        plain = null
        plainLength = 0
        sink.write(a.type === PONG ? PINGRESP : sink.ack(a.type, a.packetId, a.reasonCode, a.reason))
      } else {
        // 4 bytes, 5 with a v5 reason code (encodeAck's forms)
        plain ??= Buffer.allocUnsafe(5 * (acks.length - head + 1))
        plain[plainLength] = a.type
        plain[plainLength + 2] = a.packetId >> 8
        plain[plainLength + 3] = a.packetId & 0xff
        if (v5 && a.reasonCode !== 0) {
          plain[plainLength + 1] = 3
          plain[plainLength + 4] = a.reasonCode
          plainLength += 5
        } else {
          plain[plainLength + 1] = 2
          plainLength += 4
        }
      }
      if (a.type === PONG) continue
      if (a.reasonCode < 0x80)
        sink.noteSent(a.type === PUBACK ? 'inbound-puback-sent' : 'inbound-pubrec-sent')
      if (a.type === PUBACK || a.reasonCode >= 0x80) freed++
    }
    if (plain !== null) sink.write(plain.subarray(0, plainLength))
    if (freed > 0) this.freed(freed)
    if (head === acks.length) {
      this.acks = []
      this.head = 0
    } else if (head >= COMPACT_ACKS_AT) {
      // A publisher that never lets its acknowledgements drain would otherwise keep every entry of its
      // burst (the array is emptied only when all are done).
      this.acks = acks.slice(head)
      this.head = 0
    } else {
      this.head = head
    }
  }
}
