import type { Clock } from './clock.js'
import type { CursorIndex } from './cursor-index.js'
import type { Cursors } from './cursors.js'
import type { Databases, Db } from './databases.js'
import { StoreClosedError } from './errors.js'
import type { StoredRecord } from './record-format.js'
import type { OpenStoreOptions } from './types.js'

const COMPACTION_CHUNK = 5000
const DEFAULT_TOMBSTONE_AGE_MS = 7 * 24 * 3600 * 1000
const noop = () => {}

export interface CompactionOptions {
  retention: NonNullable<OpenStoreOptions['retention']>
  /** Opens (or returns the open) database of a table by name, for the tombstones it holds. */
  tableDb: (name: string) => Db
  onError: (error: unknown) => void
}

/**
 * Retention: drops the oldest change-log entries by age and by count, and expired tombstones, in
 * chunks of one transaction each; one run at a time, periodically or on demand.
 */
export class Compactor {
  private readonly retention: CompactionOptions['retention']
  private readonly tombstoneMaxAgeMs: number
  private running: Promise<number> | undefined = undefined
  private timer: NodeJS.Timeout | undefined = undefined
  private stopped = false

  constructor(
    private readonly dbs: Databases,
    private readonly clock: Clock,
    private readonly cursors: Cursors,
    private readonly index: CursorIndex,
    private readonly options: CompactionOptions,
  ) {
    this.retention = options.retention
    this.tombstoneMaxAgeMs =
      options.retention.tombstoneMaxAgeMs ?? options.retention.maxAgeMs ?? DEFAULT_TOMBSTONE_AGE_MS
  }

  /** Runs compaction every `intervalMs` on an unref'd timer (0: never). */
  every(intervalMs: number): void {
    if (intervalMs <= 0) return
    this.timer = setInterval(() => {
      this.compact().catch((error) => {
        if (!(error instanceof StoreClosedError)) this.options.onError(error)
      })
    }, intervalMs)
    this.timer.unref()
  }

  /** Runs compaction now (or joins the run in progress); resolves with how many log entries it removed. */
  compact(): Promise<number> {
    if (this.stopped) return Promise.reject(new StoreClosedError())
    this.running ??= this.run().finally(() => {
      this.running = undefined
    })
    return this.running
  }

  /** Refuses further runs and settles once the run in progress has. */
  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer !== undefined) clearInterval(this.timer)
    await this.running?.catch(noop)
  }

  private async run(): Promise<number> {
    const { env, logDb, metaDb } = this.dbs
    let removed = 0
    const { maxAgeMs, maxEvents } = this.retention
    if (maxAgeMs !== undefined || maxEvents !== undefined) {
      const cutoff = maxAgeMs !== undefined ? this.clock.now() - maxAgeMs * 1000 : Number.NEGATIVE_INFINITY
      let excess = maxEvents !== undefined ? this.logCount() - maxEvents : 0
      for (let done = false; !done; ) {
        const keys: number[] = []
        for (const { key, value } of logDb.getRange({ limit: COMPACTION_CHUNK })) {
          if (excess > 0 || (value[0][3] as number) < cutoff) {
            keys.push(key)
            excess--
          } else {
            done = true
            break
          }
        }
        if (keys.length === 0) break
        if (keys.length < COMPACTION_CHUNK) done = true
        // raised before the commit: a reader racing this compaction is told it fell behind, never
        // handed a log with a silent gap
        this.cursors.drop(keys[keys.length - 1]!)
        const droppedUpTo = this.cursors.droppedUpTo
        await env.transaction(() => {
          for (const key of keys) logDb.removeSync(key)
          metaDb.putSync('droppedUpTo', droppedUpTo)
        })
        removed += keys.length
      }
    }
    await this.compactTombstones()
    await this.compactIndex()
    return removed
  }

  /** The cursor index follows the log: what no valid cursor can need any more goes. */
  private async compactIndex(): Promise<void> {
    const droppedUpTo = this.cursors.droppedUpTo
    if (droppedUpTo === 0) return
    const keys = this.index.prunable(droppedUpTo)
    for (let i = 0; i < keys.length; i += COMPACTION_CHUNK) {
      const chunk = keys.slice(i, i + COMPACTION_CHUNK)
      await this.dbs.env.transaction(() => this.index.remove(chunk))
    }
  }

  private logCount(): number {
    const { logDb } = this.dbs
    const stats = logDb.getStats() as { entryCount?: number }
    return stats.entryCount ?? logDb.getCount()
  }

  private async compactTombstones(): Promise<void> {
    const { env, tombstoneDb } = this.dbs
    const cutoff = this.clock.now() - this.tombstoneMaxAgeMs * 1000
    for (;;) {
      const expired = [...tombstoneDb.getRange({ end: [cutoff], limit: COMPACTION_CHUNK })]
      if (expired.length === 0) return
      const dbs = new Map<string, Db>()
      for (const { value } of expired)
        if (!dbs.has(value[0])) dbs.set(value[0], this.options.tableDb(value[0]))
      await env.transaction(() => {
        for (const { key, value } of expired) {
          const db = dbs.get(value[0])!
          const record = db.get(value[1]) as StoredRecord | undefined
          // a later put replaced the tombstone, or a later delete wrote a newer one: leave it
          if (record !== undefined && record.length === 2 && record[0] === (key as number[])[0])
            db.removeSync(value[1])
          tombstoneDb.removeSync(key)
        }
      })
      if (expired.length < COMPACTION_CHUNK) return
    }
  }
}
