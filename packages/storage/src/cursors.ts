/** A replicated transaction holds at most this many logged events (cursor = position × 1000 + i). */
export const POSITION_FACTOR = 1000

/**
 * Positions in the change log, shared by the writer (issues cursors, publishes durable ones), readers
 * (read up to the last durable one) and compaction (records what it dropped). Each changes them only
 * through these methods.
 */
export class Cursors {
  #issued: number
  #durable: number
  #droppedUpTo: number
  /** Replication: the first cursor of the stream position after the last applied one. */
  #ceiling: number

  constructor(last: number, droppedUpTo: number, position = 0) {
    this.#issued = this.#durable = last
    this.#droppedUpTo = droppedUpTo
    this.#ceiling = (position + 1) * POSITION_FACTOR
  }

  /** Highest cursor handed out (committed or in flight). */
  get issued(): number {
    return this.#issued
  }

  /** Highest committed, durable cursor; the feed has delivered everything up to it. */
  get last(): number {
    return this.#durable
  }

  /** Highest cursor compaction removed; readers asking for older cursors fell behind. */
  get droppedUpTo(): number {
    return this.#droppedUpTo
  }

  /** Hands out the next cursor. */
  next(): number {
    return ++this.#issued
  }

  /**
   * Replication: the events of the transaction at stream `position` take the cursors `position × 1000 + i`
   * from here on; writes committed on this node after it (`ack: local`) take the slots left below
   * `(position + 1) × 1000`.
   */
  enterPosition(position: number): void {
    const after = position * POSITION_FACTOR - 1
    if (after > this.#issued) this.#issued = after
    this.#ceiling = (position + 1) * POSITION_FACTOR
  }

  /**
   * Whether `count` more cursors fit below the next stream position's: a local commit that does not fit
   * waits for the next applied position, so no node-local cursor takes a slot another node's event has.
   */
  fits(count: number): boolean {
    return this.#issued + count < this.#ceiling
  }

  /** Takes back the cursors handed out after `issued` (a transaction that failed before writing). */
  rewind(issued: number): void {
    this.#issued = issued
  }

  /** Everything up to `cursor` is durable and delivered. */
  publish(cursor: number): void {
    if (cursor > this.#durable) this.#durable = cursor
  }

  /** Compaction is about to remove everything up to `cursor`. */
  drop(cursor: number): void {
    if (cursor > this.#droppedUpTo) this.#droppedUpTo = cursor
  }
}
