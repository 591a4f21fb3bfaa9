import type { Logger } from './types.js'

/** At most one line per kind per interval: a client (or many) repeating a mistake cannot flood the log. */
const INTERVAL_MS = 10_000

/**
 * Warn-level lines for faults a client causes (a refused subscription, a protocol error), rate-limited
 * per kind across the broker: the first is logged at once, later ones at most once per interval, each
 * line counting the ones left out before it (`suppressed`).
 */
export class RateLimitedLog {
  private readonly kinds = new Map<string, { at: number; suppressed: number }>()

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = INTERVAL_MS,
  ) {}

  warn(kind: string, fields: Record<string, unknown>, message: string): void {
    const now = Date.now()
    const last = this.kinds.get(kind)
    if (last && now - last.at < this.intervalMs) {
      last.suppressed++
      return
    }
    const suppressed = last?.suppressed ?? 0
    this.kinds.set(kind, { at: now, suppressed: 0 })
    this.logger.warn(suppressed > 0 ? { ...fields, suppressed } : fields, message)
  }
}
