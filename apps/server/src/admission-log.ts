import type { Refusal } from './admission.js'
import type { Logger } from './logger.js'

/** How often refused connections are summed up in one log line. */
const REPORT_MS = 10_000
/** Addresses named in a summary line (the busiest first). */
const TOP_ADDRESSES = 5
/** Addresses counted per interval; a flood from more is summed up without naming them all. */
const MAX_ADDRESSES = 1000

/**
 * Counts connections refused by the per-address limits (for metrics) and logs them as one warn line per
 * interval: a flood refuses thousands a second, and a line per refusal would become the next flood.
 */
export class RefusalSummary {
  /** Totals since start, by `listener` then reason. */
  readonly totals = new Map<string, { rate: number; concurrent: number }>()
  #pending = 0
  #lastReport = Number.NEGATIVE_INFINITY
  readonly #addresses = new Map<string, number>()
  readonly #timer: NodeJS.Timeout

  constructor(private readonly logger: Logger) {
    this.#timer = setInterval(() => this.flush(), REPORT_MS)
    this.#timer.unref()
  }

  note(refusal: Refusal): void {
    let total = this.totals.get(refusal.listener)
    if (total === undefined) {
      total = { rate: 0, concurrent: 0 }
      this.totals.set(refusal.listener, total)
    }
    total[refusal.reason]++
    // the first refusal after a quiet interval is reported at once, the rest when the interval ends
    if (this.#pending++ === 0 && performance.now() - this.#lastReport >= REPORT_MS)
      queueMicrotask(() => this.flush())
    const n = this.#addresses.get(refusal.address)
    if (n !== undefined || this.#addresses.size < MAX_ADDRESSES)
      this.#addresses.set(refusal.address, (n ?? 0) + 1)
  }

  flush(): void {
    if (this.#pending === 0) return
    const top = [...this.#addresses]
      .sort((a, b) => b[1] - a[1])
      .slice(0, TOP_ADDRESSES)
      .map(([address, refused]) => ({ address, refused }))
    this.logger.warn(
      { component: 'admission', refused: this.#pending, addresses: top },
      `refused ${this.#pending} connection(s) over the per-address limits (connections.maxPerAddress, connections.ratePerAddress)`,
    )
    this.#lastReport = performance.now()
    this.#pending = 0
    this.#addresses.clear()
  }

  close(): void {
    clearInterval(this.#timer)
    this.flush()
  }
}
