/**
 * Outbound bytes of one connection: packets queued during one turn of the event loop leave in one write
 * (one syscall instead of one per packet, the largest cost under load), earlier once 64 KiB are queued.
 * The writers with something queued are flushed by one shared immediate per turn, not one each (S2 had 100
 * a turn, S6 one Immediate and one array per message). Subscribers of a fan-out queue the same shared
 * packets in the same order: the flush joins them once and writes those bytes to each (S2 copied them into
 * 100 buffers a turn). It also tells a subscriber that does not read (congested) and reports crash-point
 * steps once their packet is handed to the socket.
 */
import type { Duplex } from 'node:stream'
import type { FaultSink } from './fault.js'
import type { FlowStep, FlowStepHook } from './flow-steps.js'

/** Queued outbound bytes that trigger a write before the end of the event-loop turn. */
const FLUSH_BYTES = 64 * 1024
/** A subscriber that does not read: QoS 0 messages are dropped while this much is buffered for it. */
const MAX_BUFFERED = 8 * 1024 * 1024
/** Bytes waiting for the socket beyond which a subscription's initial (retained) delivery pauses. */
const PACE_BYTES = 1024 * 1024

/**
 * Writers with packets queued this turn (the first `dueCount`), flushed in the order they were first
 * written to. The array keeps its size between turns (emptied by `length = 0` it was allocated again).
 */
const due: (SocketWriter | null)[] = []
let dueCount = 0
let flushScheduled = false
/** Reads of inbound bytes in progress: the flush is decided when the read ends (see `endRead`). */
let reading = 0

/**
 * The packets the last writer of this flush pass joined, and the bytes they made (null outside a pass).
 * Kept for one pass only: the parts are immutable buffers, but nothing is held past the turn.
 */
let joinedParts: Buffer[] | null = null
let joined: Buffer | null = null

function flushDue(): void {
  flushScheduled = false
  // a flush may queue more (a fault's DISCONNECT): the loop reads the count each time
  for (let i = 0; i < dueCount; i++) {
    const writer = due[i]!
    due[i] = null
    writer.flush()
  }
  dueCount = 0
  joinedParts = null
  joined = null
}

function scheduleFlush(): void {
  flushScheduled = true
  setImmediate(flushDue)
}

/** A connection starts handling bytes it read (`endRead` follows, also when handling throws). */
export function beginRead(): void {
  reading++
}

/**
 * A read was handled. When it carried a lone packet, what it made leaves now: nothing else is coming to
 * batch it with, and waiting for the end of the turn cost S6 an Immediate and the rest of the turn per
 * message. What a burst made (many packets in one read) still leaves once at the end of the turn, with
 * what the turn's other reads add (S1: one write for 16 publishers' reads).
 */
export function endRead(lone: boolean): void {
  if (--reading > 0 || dueCount === 0) return
  if (lone) flushDue()
  else if (!flushScheduled) scheduleFlush()
}

/** One buffer of `parts`: the previous writer's when it queued the same packets (a fan-out), else a new one. */
function join(parts: Buffer[], bytes: number): Buffer {
  const last = joinedParts
  if (last !== null && last.length === parts.length) {
    let i = 0
    while (i < parts.length && last[i] === parts[i]) i++
    if (i === parts.length) return joined!
  }
  joinedParts = parts
  joined = Buffer.concat(parts, bytes)
  return joined
}

export class SocketWriter {
  /** The first packet queued this turn; null when none. */
  private first: Buffer | null = null
  /** Every packet queued this turn once there are two (an idle connection and one packet a turn keep no array). */
  private more: Buffer[] | null = null
  private outBytes = 0
  private stopped = false
  /** Flow steps whose packet is in `out`: reported once it is handed to the socket (tests only). */
  private sentSteps: FlowStep[] | null = null

  constructor(
    private readonly stream: Duplex,
    private readonly sink: FaultSink,
    private readonly onFlowStep: FlowStepHook | undefined,
  ) {}

  /** Queues a packet; nothing is queued once the connection closed. */
  write(buf: Buffer): void {
    if (this.stopped) return
    this.outBytes += buf.length
    if (this.first === null) {
      this.first = buf
      due[dueCount++] = this
      if (!flushScheduled && reading === 0) scheduleFlush()
      return
    }
    if (this.more === null) this.more = [this.first, buf]
    else this.more.push(buf)
    if (this.outBytes >= FLUSH_BYTES) this.flush()
  }

  /** The connection closed: what is queued may still be flushed, nothing more is queued. */
  stop(): void {
    this.stopped = true
  }

  get congested(): boolean {
    return this.outBytes + this.stream.writableLength > MAX_BUFFERED
  }

  /**
   * Undefined while the socket takes more; once more than PACE_BYTES wait for it, a promise that settles
   * when it drained (or closed). A subscription's initial delivery waits on it after each event, so a large
   * retained set is streamed to the client instead of queued in memory ahead of it (and QoS 0 ones past
   * MAX_BUFFERED dropped).
   */
  drained(): Promise<void> | undefined {
    const stream = this.stream
    if (this.outBytes + stream.writableLength <= PACE_BYTES || stream.destroyed) return undefined
    this.flush()
    if (stream.writableLength <= PACE_BYTES || !stream.writableNeedDrain || stream.destroyed) return undefined
    return new Promise((resolve) => {
      const done = () => {
        stream.off('drain', done)
        stream.off('close', done)
        resolve()
      }
      stream.on('drain', done)
      stream.on('close', done)
    })
  }

  /** Reports `step` once the packet just written leaves for the socket (crash-point tests). */
  noteSent(step: FlowStep): void {
    if (this.onFlowStep !== undefined) (this.sentSteps ??= []).push(step)
  }

  /** Writes what is queued (at the end of the turn, or earlier when asked). */
  flush(): void {
    const first = this.first
    if (first === null) return
    const more = this.more
    this.first = null
    this.more = null
    const bytes = this.outBytes
    this.outBytes = 0
    if (this.stream.destroyed) return
    try {
      this.stream.write(more === null ? first : join(more, bytes))
    } catch (err) {
      this.sink.fault(err)
    }
    const steps = this.sentSteps
    if (steps !== null) {
      this.sentSteps = null
      for (const step of steps) this.onFlowStep?.(step)
    }
  }
}
