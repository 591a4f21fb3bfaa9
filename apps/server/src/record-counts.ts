/**
 * Record counts per table, for the metrics and the Studio's table list. Counting a table walks it
 * (tombstones are skipped one by one), so a count is reused while nothing was written since, and a
 * table that takes long to count is counted again only after a pause proportional to that cost:
 * small tables are always fresh, a large one costs the event loop at most about 1 % of the time.
 * "Small" is by record count, not by the time the last count took: on a busy machine a count of a few
 * records can take long in wall-clock time, and a count held back then would be wrong, not just late.
 */
import type { ResourceRuntime } from '@proj/resource'

export interface RecordCounts {
  /** Records in a storage table (`TableDefinition.storageName`, or TOPICS_TABLE for retained topics). */
  count(storageName: string): number
}

const COST_FACTOR = 100
const MAX_HOLD_MS = 60_000
/** Tables with fewer records are counted again after any write. */
const SMALL = 10_000

interface Entry {
  n: number
  at: number
  cursor: number
  costMs: number
}

export function createRecordCounts(runtime: ResourceRuntime): RecordCounts {
  const cache = new Map<string, Entry>()
  return {
    count(storageName) {
      const now = performance.now()
      const cursor = runtime.storage.log.lastCursor
      const hit = cache.get(storageName)
      const hold = hit !== undefined && hit.n >= SMALL
      if (
        hit &&
        (hit.cursor === cursor || (hold && now - hit.at < Math.min(hit.costMs * COST_FACTOR, MAX_HOLD_MS)))
      )
        return hit.n
      const n = runtime.storage.count(storageName)
      const done = performance.now()
      cache.set(storageName, { n, at: done, cursor, costMs: done - now })
      return n
    },
  }
}
