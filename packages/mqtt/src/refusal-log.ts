import type { Logger } from './types.js'

/** One warning per client per interval: a client that keeps publishing where it may not cannot flood the log. */
const WARN_INTERVAL_MS = 10_000

export interface RefusalDetails {
  clientId: string
  topic: string
  reasonCode: number
  reason: string
}

/**
 * The warn-level log of one client's refused publishes, rate-limited: the first refusal is logged at
 * once, later ones at most once per interval, each line counting the refusals left out before it.
 */
export class RefusalLog {
  private lastAt = Number.NEGATIVE_INFINITY
  private suppressed = 0

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = WARN_INTERVAL_MS,
  ) {}

  note(details: RefusalDetails, err: unknown): void {
    const now = Date.now()
    if (now - this.lastAt < this.intervalMs) {
      this.suppressed++
      return
    }
    this.lastAt = now
    const fields: Record<string, unknown> = { ...details, err }
    if (this.suppressed > 0) fields.suppressed = this.suppressed
    this.suppressed = 0
    this.logger.warn(
      fields,
      `mqtt: publish to ${details.topic} by ${details.clientId} refused (0x${details.reasonCode.toString(16)}): ${details.reason}`,
    )
  }
}
