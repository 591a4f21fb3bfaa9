/**
 * Keep-alive [MQTT-3.1.2-24]: a connection that receives nothing for one and a half times its keep-alive
 * interval has timed out. One timer per connection, re-armed for the time left rather than on every packet.
 */
import type { FaultSink } from './fault.js'
import { guarded } from './fault.js'

export class KeepAlive {
  private ms = 0
  private lastRx = Date.now()
  private timer: NodeJS.Timeout | null = null
  private stopped = false

  constructor(
    private readonly sink: FaultSink,
    private readonly onTimeout: () => void,
  ) {}

  /** Bytes arrived. */
  touch(): void {
    this.lastRx = Date.now()
  }

  /** Starts watching; 0 seconds = no keep-alive. */
  start(seconds: number): void {
    if (seconds === 0) return
    this.ms = seconds * 1500
    this.arm(this.ms)
  }

  stop(): void {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
  }

  private arm(ms: number): void {
    this.timer = setTimeout(
      guarded(this.sink, () => this.check()),
      ms,
    )
    this.timer.unref?.()
  }

  private check(): void {
    this.timer = null
    if (this.stopped) return
    const idle = Date.now() - this.lastRx
    if (idle >= this.ms) this.onTimeout()
    else this.arm(this.ms - idle)
  }
}
