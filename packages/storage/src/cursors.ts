/**
 * Positions in the change log, shared by the writer (issues cursors, publishes durable ones), readers
 * (read up to the last durable one) and compaction (records what it dropped). Each changes them only
 * through these methods.
 */
export class Cursors {
  #issued: number
  #durable: number
  #droppedUpTo: number

  constructor(last: number, droppedUpTo: number) {
    this.#issued = this.#durable = last
    this.#droppedUpTo = droppedUpTo
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

  /** Skips ahead so the next cursor is `after + 1` (replication: cursors derive from stream positions). */
  advanceTo(after: number): void {
    if (after > this.#issued) this.#issued = after
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
