/**
 * Timing of commits for monitoring: how many writes each LMDB transaction carried, how long it took
 * to commit and how long the fsync after it took. Measured only while someone listens, and reported
 * as plain numbers (the store knows no metrics library).
 */

/** One committed batch (one LMDB write transaction). */
export interface CommitStats {
  /** Writes in the batch; a `store.transaction()` counts as one. */
  writes: number
  /** From the batch being queued to its transaction committed, ms. */
  commitMs: number
  /** From the commit to the data being flushed to disk, ms; 0 with `noSync`. */
  syncMs: number
}

export type CommitListener = (stats: CommitStats) => void

export class CommitObservers {
  readonly #listeners = new Set<CommitListener>()

  constructor(private readonly onError: (error: unknown) => void) {}

  add(listener: CommitListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Times one batch when anyone listens; `writes` is read once the batch committed. */
  time(writes: () => number, committed: Promise<unknown>, durable: Promise<unknown>, synced: boolean): void {
    if (this.#listeners.size === 0) return
    const start = performance.now()
    let committedAt = start
    committed.then(() => {
      committedAt = performance.now()
    }, noop)
    durable.then(() => {
      const stats: CommitStats = {
        writes: writes(),
        commitMs: committedAt - start,
        syncMs: synced ? performance.now() - committedAt : 0,
      }
      for (const listener of this.#listeners) {
        try {
          listener(stats)
        } catch (error) {
          this.onError(error)
        }
      }
    }, noop)
  }
}

function noop(): void {}
