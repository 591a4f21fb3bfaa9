/**
 * Outbound bytes of one connection: packets queued during one turn of the event loop leave in one write
 * (one syscall instead of one per packet, the largest cost under load), earlier once 64 KiB are queued.
 * It also tells a subscriber that does not read (congested) and reports crash-point steps once their
 * packet is handed to the socket.
 */
import type { Duplex } from 'node:stream'
import type { FaultSink } from './fault.js'
import type { FlowStep, FlowStepHook } from './flow-steps.js'

/** Queued outbound bytes that trigger a write before the end of the event-loop turn. */
const FLUSH_BYTES = 64 * 1024
/** A subscriber that does not read: QoS 0 messages are dropped while this much is buffered for it. */
const MAX_BUFFERED = 8 * 1024 * 1024

export class SocketWriter {
  /** Packets queued this turn; null when none (an idle connection keeps no array). */
  private out: Buffer[] | null = null
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
    const out = this.out
    this.outBytes += buf.length
    if (out === null) {
      this.out = [buf]
      // The writer is the timer's argument: no flush closure per connection.
      setImmediate(flushWriter, this)
      return
    }
    out.push(buf)
    if (this.outBytes >= FLUSH_BYTES) this.flush()
  }

  /** The connection closed: what is queued may still be flushed, nothing more is queued. */
  stop(): void {
    this.stopped = true
  }

  get congested(): boolean {
    return this.outBytes + this.stream.writableLength > MAX_BUFFERED
  }

  /** Reports `step` once the packet just written leaves for the socket (crash-point tests). */
  noteSent(step: FlowStep): void {
    if (this.onFlowStep !== undefined) (this.sentSteps ??= []).push(step)
  }

  /** Writes what is queued (at the end of the turn, or earlier when asked). */
  flush(): void {
    const out = this.out
    if (out === null) return
    this.out = null
    const bytes = this.outBytes
    this.outBytes = 0
    if (this.stream.destroyed) return
    try {
      this.stream.write(out.length === 1 ? out[0]! : Buffer.concat(out, bytes))
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

function flushWriter(writer: SocketWriter): void {
  writer.flush()
}
