/**
 * Keep-alive [MQTT-3.1.2-24]: a connection that receives nothing for one and a half times its keep-alive
 * interval has timed out. The broker's connections share one timer (`KeepAliveTimers`, a min-heap of
 * deadlines): an idle connection holds no timer of its own. A deadline is checked when it comes and moved
 * to the time left rather than on every packet, so receiving costs one clock read.
 */
import type { FaultSink } from './fault.js'

/** The connection a keep-alive watches. */
export interface KeepAliveOwner extends FaultSink {
  /** Nothing arrived in time: the connection closes (v5: DISCONNECT 0x8D). */
  keepAliveTimedOut(): void
}

/** One connection's keep-alive. */
export class KeepAlive {
  private ms = 0
  private lastRx = Date.now()
  /** When to check next (ms since the epoch); the heap's order. */
  due = 0
  /** Position in the heap; -1 when not watched. */
  slot = -1

  constructor(
    private readonly timers: KeepAliveTimers,
    readonly owner: KeepAliveOwner,
  ) {}

  /** Bytes arrived. */
  touch(): void {
    this.lastRx = Date.now()
  }

  /** Starts watching; 0 seconds = no keep-alive. */
  start(seconds: number): void {
    if (seconds === 0) return
    this.ms = seconds * 1500
    this.due = Date.now() + this.ms
    this.timers.add(this)
  }

  stop(): void {
    this.timers.remove(this)
  }

  /** Its deadline came: timed out, or the next deadline from the last packet (true: watch again). */
  check(now: number): boolean {
    const idle = now - this.lastRx
    if (idle >= this.ms) {
      this.owner.keepAliveTimedOut()
      return false
    }
    this.due = this.lastRx + this.ms
    return true
  }
}

/** The deadlines of every watched connection and the one timer for the earliest. */
export class KeepAliveTimers {
  private readonly heap: KeepAlive[] = []
  private timer: NodeJS.Timeout | null = null
  private timerDue = Number.POSITIVE_INFINITY
  private readonly fire = (): void => this.expire()

  /** Connections watched. */
  get size(): number {
    return this.heap.length
  }

  add(ka: KeepAlive): void {
    if (ka.slot !== -1) this.remove(ka)
    ka.slot = this.heap.length
    this.heap.push(ka)
    this.up(ka.slot)
    this.arm()
  }

  remove(ka: KeepAlive): void {
    const i = ka.slot
    if (i === -1) return
    ka.slot = -1
    const last = this.heap.pop()!
    if (i < this.heap.length) {
      this.heap[i] = last
      last.slot = i
      this.down(i)
      this.up(last.slot)
    }
    if (this.heap.length === 0) this.disarm()
  }

  /** The broker closes: nothing is watched any more. */
  close(): void {
    for (const ka of this.heap) ka.slot = -1
    this.heap.length = 0
    this.disarm()
  }

  private expire(): void {
    this.timer = null
    this.timerDue = Number.POSITIVE_INFINITY
    const now = Date.now()
    const heap = this.heap
    while (heap.length > 0 && heap[0]!.due <= now) {
      const ka = heap[0]!
      let again = false
      try {
        again = ka.check(now)
      } catch (err) {
        // A fault closes that one connection (its barrier), never the others' keep-alive.
        ka.owner.fault(err)
      }
      if (ka.slot !== 0) continue // removed while timing out (the connection closed)
      if (again) this.down(0)
      else this.remove(ka)
    }
    this.arm()
  }

  /** One timer, for the earliest deadline. */
  private arm(): void {
    const top = this.heap[0]
    if (top === undefined || top.due >= this.timerDue) return
    if (this.timer !== null) clearTimeout(this.timer)
    this.timerDue = top.due
    this.timer = setTimeout(this.fire, Math.max(0, top.due - Date.now()))
    this.timer.unref?.()
  }

  private disarm(): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.timerDue = Number.POSITIVE_INFINITY
  }

  private up(i: number): void {
    const heap = this.heap
    const ka = heap[i]!
    while (i > 0) {
      const p = (i - 1) >> 1
      const parent = heap[p]!
      if (parent.due <= ka.due) break
      heap[i] = parent
      parent.slot = i
      i = p
    }
    heap[i] = ka
    ka.slot = i
  }

  private down(i: number): void {
    const heap = this.heap
    const n = heap.length
    const ka = heap[i]!
    for (;;) {
      const l = 2 * i + 1
      if (l >= n) break
      const r = l + 1
      const c = r < n && heap[r]!.due < heap[l]!.due ? r : l
      const child = heap[c]!
      if (child.due >= ka.due) break
      heap[i] = child
      child.slot = i
      i = c
    }
    heap[i] = ka
    ka.slot = i
  }
}
