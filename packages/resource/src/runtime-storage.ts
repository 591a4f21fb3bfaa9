import type { CommitStats, Store } from '@proj/storage'

/**
 * What a caller of the runtime sees of its storage: the change log's cursors (and compaction on demand),
 * table names and sizes, and commit statistics, for metrics, start-up reports and tests. Records are read
 * and written through the runtime, which checks permissions and keeps subscribers in step; a server that
 * wires a cluster opens the store itself and hands it to the runtime (`RuntimeOptions.store`).
 */
export interface RuntimeStorage {
  readonly log: {
    /** Cursor of the newest durable change (0 when none). */
    readonly lastCursor: number
    /** Oldest cursor the log still keeps. */
    readonly firstCursor: number
    /** Drops changes older than the retention window now; how many were removed. */
    compact(): Promise<number>
  }
  /** The storage tables on disk. */
  tableNames(): string[]
  /** Records in the storage table `name`. */
  count(name: string): number
  /** Told the size and timings of each commit; returns the function that stops it. */
  onCommit(listener: (stats: CommitStats) => void): () => void
}

/** The RuntimeStorage view of `store`. */
export function storageView(store: Store): RuntimeStorage {
  return Object.freeze({
    log: Object.freeze({
      get lastCursor() {
        return store.log.lastCursor
      },
      get firstCursor() {
        return store.log.firstCursor
      },
      compact: () => store.log.compact(),
    }),
    tableNames: () => store.tableNames(),
    count: (name: string) => store.table(name).count(),
    onCommit: (listener: (stats: CommitStats) => void) => store.onCommit(listener),
  })
}
