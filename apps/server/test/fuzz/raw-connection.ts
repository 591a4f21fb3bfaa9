/**
 * A raw TCP connection that writes arbitrary bytes and watches the broker's replies only as frames:
 * it counts PINGRESPs (our sync points) and reads the CONNACK's code, whatever the protocol version.
 */
import { connect, type Socket } from 'node:net'
import { readVarint } from './wire.js'

export type Outcome = 'answered' | 'closed' | 'timeout'

export class RawConnection {
  readonly socket: Socket
  closed = false
  /** PINGREQs sent (in inputs and as sync points) and PINGRESPs received. */
  pingsSent = 0
  pingsAnswered = 0
  /** The CONNACK's return or reason code, once it arrived. */
  connackCode: number | undefined
  readonly opened: Promise<void>
  readonly #closedPromise: Promise<void>
  #pending: Buffer = Buffer.alloc(0)
  #wake: (() => void) | undefined

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1')
    this.socket.setNoDelay(true)
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve())
      this.socket.once('error', reject)
    })
    this.opened.catch(() => {})
    this.socket.on('error', () => {})
    this.socket.on('data', (chunk) => this.#onData(chunk))
    this.#closedPromise = new Promise((resolve) =>
      this.socket.once('close', () => {
        this.closed = true
        this.#wake?.()
        resolve()
      }),
    )
  }

  #onData(chunk: Buffer): void {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk])
    for (;;) {
      const len = readVarint(this.#pending, 1)
      if (typeof len === 'string') break
      const end = 1 + len.size + len.value
      if (this.#pending.length < end) break
      const type = (this.#pending[0] as number) >> 4
      if (type === 13) this.pingsAnswered++
      if (type === 2) this.connackCode = this.#pending[1 + len.size + 1]
      this.#pending = this.#pending.subarray(end)
    }
    this.#wake?.()
  }

  /** Resolves when `done()` holds, the connection closes, or `timeoutMs` passes. */
  #until(done: () => boolean, timeoutMs: number): Promise<Outcome> {
    return new Promise((resolve) => {
      const check = () => {
        if (done()) finish('answered')
        else if (this.closed) finish('closed')
      }
      const timer = setTimeout(() => finish('timeout'), timeoutMs)
      const finish = (o: Outcome) => {
        clearTimeout(timer)
        this.#wake = undefined
        resolve(o)
      }
      this.#wake = check
      check()
    })
  }

  async write(bytes: Buffer, drip: boolean): Promise<void> {
    if (this.closed) return
    if (!drip) {
      this.socket.write(bytes)
      return
    }
    // a byte at a time (short inputs) or in 61-byte chunks, each its own write and its own turn of the loop
    const step = bytes.length <= 256 ? 1 : 61
    for (let i = 0; i < bytes.length && !this.closed; i += step) {
      this.socket.write(bytes.subarray(i, i + step))
      await new Promise((r) => setImmediate(r))
    }
  }

  /** Sends a PINGREQ after everything written so far and waits for every PINGREQ to be answered. */
  sync(extraPings: number, timeoutMs: number): Promise<Outcome> {
    this.pingsSent += extraPings + 1
    if (!this.closed) this.socket.write(Buffer.from([0xc0, 0x00]))
    return this.#until(() => this.pingsAnswered >= this.pingsSent, timeoutMs)
  }

  waitConnack(timeoutMs: number): Promise<Outcome> {
    return this.#until(() => this.connackCode !== undefined, timeoutMs)
  }

  /** Waits for the broker to close the connection. */
  waitClosed(timeoutMs: number): Promise<Outcome> {
    return this.#until(() => false, timeoutMs)
  }

  /** Ends our side (the broker sees end of stream, mid-packet or not). */
  end(): void {
    this.socket.end()
  }

  destroy(): Promise<void> {
    this.socket.destroy()
    return this.#closedPromise
  }
}
