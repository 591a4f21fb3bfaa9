import type { HybridClock, Timestamp } from './types.js'

export interface HybridClockOptions {
  nodeId: number
  /** Highest timestamp issued before (e.g. persisted across restarts); `now()` stays above it. */
  last?: Timestamp
  /** Wall clock in microseconds since the epoch (default `Date.now() * 1000`); injectable for tests. */
  wallClock?: () => number
}

const defaultWallClock = (): number => Date.now() * 1000

/**
 * A hybrid logical clock: wall-clock microseconds, strictly increasing even when the wall clock steps
 * back (it then counts up from the last issued value by 1 µs). The node id travels alongside.
 *
 * @example
 * const clock = createHybridClock({ nodeId: 7 })
 * const a = clock.now()
 * clock.observe(remoteTimestamp)
 * clock.now() > a // always
 */
export function createHybridClock(options: HybridClockOptions): HybridClock & { readonly last: Timestamp } {
  return new Clock(options.nodeId, options.last ?? 0, options.wallClock ?? defaultWallClock)
}

export class Clock implements HybridClock {
  constructor(
    readonly nodeId: number,
    public last: Timestamp,
    private readonly wall: () => number,
  ) {}

  now(): Timestamp {
    const wall = this.wall()
    this.last = wall > this.last ? wall : this.last + 1
    return this.last
  }

  observe(remote: Timestamp): void {
    if (remote > this.last) this.last = remote
  }
}
