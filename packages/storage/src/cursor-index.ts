import { POSITION_FACTOR } from './cursors.js'
import type { Db } from './databases.js'

export const CURSOR_INDEX_DB = '__cursorIndex'

/**
 * Own transactions of an origin reach the stream in commit order; a leader change may reorder a few.
 * A backward scan stops only after this many transactions in a row lay at or below the cursor.
 */
const REORDER_MARGIN = 16

/** A transaction's entry: `[stream position (0: not in the stream yet), logged events at its origin]`. */
type Entry = [position: number, count: number]

/**
 * Where the events of transactions committed locally on a node (`ack: local`) went in the stream:
 * `[origin node, provisional cursor of its first logged event] → [position, count]`. The origin
 * delivered them under the provisional cursors, every node logs them as `position × 1000 + i`; a
 * cursor handed out by the origin means "everything up to it in the origin's numbering", and this index
 * turns it into the stream's. Node-local (never replicated), pruned with the change log's retention.
 */
export class CursorIndex {
  constructor(private readonly db: Db) {}

  /** @internal Inside a write transaction: the transaction of `origin` numbered from `first` is at `position`. */
  record(origin: number, first: number, position: number, count: number): void {
    this.db.putSync([origin, first], [position, count])
  }

  /** How many logged events the transaction of `origin` numbered from `first` had, when recorded. */
  count(origin: number, first: number): number | undefined {
    return (this.db.get([origin, first]) as Entry | undefined)?.[1]
  }

  /**
   * Of the events `issuer` numbered at or below `after`, those the stream orders after `after`: per
   * stream position, the highest index `i` of its events (`position × 1000 + i`) the issuer delivered.
   */
  deliveredLater(issuer: number, after: number): Map<number, number> {
    const later = new Map<number, number>()
    this.#scan(issuer, after, (first, [position]) => {
      if (position * POSITION_FACTOR > after) later.set(position, after - first)
    })
    return later
  }

  /**
   * This node's own events numbered at or below `after` that the stream orders after it or does not hold
   * yet: the `[first, count]` of their transactions, oldest first (what a reader of another node's
   * cursor had not received).
   */
  ownLater(self: number, after: number): [first: number, count: number][] {
    const found: [number, number][] = []
    this.#scan(self, after, (first, [position, count]) => {
      if (position === 0 || position * POSITION_FACTOR > after) found.push([first, count])
    })
    return found.reverse()
  }

  /** Backwards from `[origin, after]` until REORDER_MARGIN entries in a row lie at or below `after` in the stream. */
  #scan(origin: number, after: number, visit: (first: number, entry: Entry) => void): void {
    let below = 0
    for (const { key, value } of this.db.getRange({
      start: [origin, after],
      end: [origin, -1],
      reverse: true,
    })) {
      const entry = value as Entry
      if (entry[0] !== 0 && entry[0] * POSITION_FACTOR <= after) {
        if (++below >= REORDER_MARGIN) return
        continue
      }
      below = 0
      visit((key as [number, number])[1], entry)
    }
  }

  /**
   * Entries no reader can need once the log holds nothing at or below `droppedUpTo`: those whose stream
   * position lies at or below it (a valid `after` is never older). Pending ones stay.
   */
  prunable(droppedUpTo: number): [number, number][] {
    const keys: [number, number][] = []
    // per origin, only the entries with a provisional cursor up to the cut: a later one lies later in
    // the stream too (its position exceeds its provisional cursor's)
    for (let from: [number, number] | undefined = [0, -1]; from !== undefined; ) {
      const start: [number, number] = from
      from = undefined
      for (const { key, value } of this.db.getRange({ start })) {
        const [origin, first] = key as [number, number]
        if (first > droppedUpTo) {
          from = [origin + 1, -1]
          break
        }
        const [position] = value as Entry
        if (position !== 0 && position * POSITION_FACTOR <= droppedUpTo) keys.push([origin, first])
      }
    }
    return keys
  }

  /** @internal Inside a write transaction. */
  remove(keys: readonly [number, number][]): void {
    for (const key of keys) this.db.removeSync(key)
  }
}
