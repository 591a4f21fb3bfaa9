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
 * Timestamps of one node fall in one of this many lanes (the timestamp modulo LANES, from the node id), so
 * two nodes whose ids differ modulo LANES never issue the same timestamp, even in the same millisecond:
 * a version (ETag, `ifVersion`) then names one write, not a tie that only the node id breaks.
 */
const CLOCK_LANES = 1000

/** The lane of a node id: the residue, modulo {@link CLOCK_LANES}, of every timestamp the node issues. */
function clockLane(nodeId: number): number {
  return nodeId % CLOCK_LANES
}

/**
 * A hybrid logical clock: wall-clock microseconds, strictly increasing even when the wall clock steps
 * back (it then counts up from the last value issued or observed), always in the node's lane (see
 * {@link CLOCK_LANES}; the wall clock counts milliseconds, so the lane costs no precision). The node id
 * travels alongside.
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
  private readonly lane: number

  constructor(
    readonly nodeId: number,
    public last: Timestamp,
    private readonly wall: () => number,
  ) {
    this.lane = clockLane(nodeId)
  }

  now(): Timestamp {
    const wall = this.wall()
    const base = wall > this.last ? wall : this.last + 1
    // the first timestamp at or after base in this node's lane
    this.last = base + ((((this.lane - base) % CLOCK_LANES) + CLOCK_LANES) % CLOCK_LANES)
    return this.last
  }

  observe(remote: Timestamp): void {
    if (remote > this.last) this.last = remote
  }
}
