import { MalformedPacketError, type MqttError, PacketTooLargeError } from './errors.js'

/**
 * Receives whole MQTT packets: bytes `start` to `end` of `buf` are one packet (fixed header + body), its body
 * starting at `body`. `buf` may hold other packets too (no view is made per packet: the hot PUBLISH path
 * reads it in place).
 */
export interface FrameSink {
  onFrame(buf: Buffer, start: number, body: number, end: number): void
  onFrameError(error: MqttError): void
}

/**
 * Splits a byte stream into MQTT packets (MQTT 3.1.1 section 2.2, MQTT 5 section 2.1) without
 * parsing them: whole packets inside one chunk are passed on as offsets into it (no copy); a packet
 * that spans chunks is assembled once into a buffer of its exact size. Packets larger than
 * `maxPacketSize` are refused from their fixed header, before their bytes are buffered.
 */
export class FrameReader {
  private head: Buffer | null = null
  private frame: Buffer | null = null
  private frameBody = 0
  private filled = 0
  private stopped = false

  constructor(
    private readonly sink: FrameSink,
    public maxPacketSize: number,
  ) {}

  /** Stops emitting frames (the connection is closing). */
  stop(): void {
    this.stopped = true
    this.head = null
    this.frame = null
  }

  /** Passes on the whole packets `chunk` completes; returns how many. */
  push(chunk: Buffer): number {
    if (this.stopped) return 0
    let frames = 0
    let off = 0
    if (this.frame !== null) {
      const frame = this.frame
      const n = Math.min(frame.length - this.filled, chunk.length)
      chunk.copy(frame, this.filled, 0, n)
      this.filled += n
      off = n
      if (this.filled < frame.length) return 0
      this.frame = null
      frames++
      this.sink.onFrame(frame, 0, this.frameBody, frame.length)
    } else if (this.head !== null) {
      chunk = Buffer.concat([this.head, chunk])
      this.head = null
    }
    const len = chunk.length
    while (off < len && !this.stopped) {
      // Fixed header: one type byte, then the remaining length as a variable byte integer (1-4 bytes).
      let i = off + 1
      let remaining = 0
      let mult = 1
      let b = 0x80
      while (b & 0x80) {
        // A fourth length byte that says "more follows" is already malformed: refuse it now rather
        // than wait (perhaps forever, without keep-alive) for a fifth byte that cannot make it right.
        if (i - off > 4) {
          this.fail(new MalformedPacketError('remaining length longer than 4 bytes'))
          return frames
        }
        if (i >= len) {
          this.head = Buffer.from(chunk.subarray(off))
          return frames
        }
        b = chunk[i++]!
        remaining += (b & 0x7f) * mult
        mult *= 128
      }
      const bodyOffset = i - off
      const total = bodyOffset + remaining
      if (total > this.maxPacketSize) {
        this.fail(new PacketTooLargeError(total, this.maxPacketSize))
        return frames
      }
      if (off + total <= len) {
        const start = off
        off += total
        frames++
        this.sink.onFrame(chunk, start, start + bodyOffset, off)
      } else {
        const frame = Buffer.allocUnsafe(total)
        chunk.copy(frame, 0, off, len)
        this.frame = frame
        this.frameBody = bodyOffset
        this.filled = len - off
        return frames
      }
    }
    return frames
  }

  private fail(error: MqttError): void {
    this.stop()
    this.sink.onFrameError(error)
  }
}
