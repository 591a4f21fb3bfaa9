/**
 * Intervals over one ordered domain (numbers, or strings by code point), answering "which intervals
 * meet this point (or span)" without looking at the others: a centered interval tree, rebuilt
 * lazily, plus a short list of intervals added since the last build. Each bound is inclusive or
 * open, and undefined for unbounded; answers are exact. `low <= high` is the caller's to ensure.
 */

export interface Interval<K, T> {
  readonly low: K | undefined
  readonly high: K | undefined
  readonly lowOpen: boolean
  readonly highOpen: boolean
  readonly item: T
  removed: boolean
}

interface TreeNode<K, T> {
  center: K
  /** Intervals containing `center`, by low ascending. */
  byLow: Interval<K, T>[]
  /** The same intervals, by high descending. */
  byHigh: Interval<K, T>[]
  left: TreeNode<K, T> | undefined
  right: TreeNode<K, T> | undefined
}

const MIN_PENDING = 32

export class IntervalIndex<K, T> {
  readonly #compare: (a: K, b: K) => number
  #tree: TreeNode<K, T> | undefined
  /** Intervals with no bound at all: they contain every point. */
  readonly #everything = new Set<Interval<K, T>>()
  /** Added since the tree was built, scanned one by one. */
  #pending: Interval<K, T>[] = []
  /** Live intervals in the tree, and removed ones still in it. */
  #inTree = 0
  #removedInTree = 0

  constructor(compare: (a: K, b: K) => number) {
    this.#compare = compare
  }

  get size(): number {
    return this.#inTree - this.#removedInTree + this.#pending.length + this.#everything.size
  }

  add(low: K | undefined, high: K | undefined, item: T, lowOpen = false, highOpen = false): Interval<K, T> {
    const interval: Interval<K, T> = { low, high, lowOpen, highOpen, item, removed: false }
    if (low === undefined && high === undefined) this.#everything.add(interval)
    else this.#pending.push(interval)
    return interval
  }

  remove(interval: Interval<K, T>): void {
    if (interval.removed) return
    interval.removed = true
    if (this.#everything.delete(interval)) return
    const at = this.#pending.indexOf(interval)
    if (at >= 0) {
      this.#pending[at] = this.#pending[this.#pending.length - 1]!
      this.#pending.pop()
    } else this.#removedInTree++
  }

  /** Calls `visit` with the item of every interval containing `point`. */
  stab(point: K, visit: (item: T) => void): void {
    const found: Interval<K, T>[] = []
    this.collect(point, point, found)
    for (let i = 0; i < found.length; i++) {
      const interval = found[i]!
      if (!interval.removed) visit(interval.item)
    }
  }

  /** Calls `visit` with the item of every interval that shares a point with `[low, high]`. */
  overlap(low: K, high: K, visit: (item: T) => void): void {
    const found: Interval<K, T>[] = []
    this.collect(low, high, found)
    for (let i = 0; i < found.length; i++) {
      const interval = found[i]!
      if (!interval.removed) visit(interval.item)
    }
  }

  /**
   * Appends to `out` every interval that shares a point with `[low, high]`: no callback per
   * interval, and the caller may reuse `out` (a change visits hundreds of intervals).
   */
  collect(low: K, high: K, out: Interval<K, T>[]): void {
    for (const interval of this.#everything) out.push(interval)
    const live = this.#inTree - this.#removedInTree
    if (this.#pending.length > MIN_PENDING + Math.sqrt(live) || this.#removedInTree > live) this.#rebuild()
    const compare = this.#compare
    const pending = this.#pending
    for (let i = 0; i < pending.length; i++) {
      const interval = pending[i]!
      if (this.#meets(interval, low, high)) out.push(interval)
    }
    const stack: TreeNode<K, T>[] = []
    let node = this.#tree
    while (node) {
      if (compare(high, node.center) < 0) {
        // Everything here reaches the center; only those starting at or before `high` can meet.
        const byLow = node.byLow
        for (let i = 0; i < byLow.length; i++) {
          const interval = byLow[i]!
          if (interval.low !== undefined && compare(interval.low, high) > 0) break
          if (this.#meets(interval, low, high)) out.push(interval)
        }
        node = node.left
      } else if (compare(low, node.center) > 0) {
        const byHigh = node.byHigh
        for (let i = 0; i < byHigh.length; i++) {
          const interval = byHigh[i]!
          if (interval.high !== undefined && compare(interval.high, low) < 0) break
          if (this.#meets(interval, low, high)) out.push(interval)
        }
        node = node.right
      } else {
        // [low, high] holds the center, which every interval here reaches: both sides may meet too.
        const byLow = node.byLow
        for (let i = 0; i < byLow.length; i++) {
          const interval = byLow[i]!
          if (this.#meets(interval, low, high)) out.push(interval)
        }
        if (node.right) stack.push(node.right)
        node = node.left
      }
      if (!node) node = stack.pop()
    }
  }

  /** Whether `interval` (live) contains `point`. */
  contains(interval: Interval<K, T>, point: K): boolean {
    return this.#meets(interval, point, point)
  }

  #meets(interval: Interval<K, T>, low: K, high: K): boolean {
    if (interval.removed) return false
    if (interval.low !== undefined) {
      const c = this.#compare(high, interval.low)
      if (c < 0 || (c === 0 && interval.lowOpen)) return false
    }
    if (interval.high !== undefined) {
      const c = this.#compare(low, interval.high)
      if (c > 0 || (c === 0 && interval.highOpen)) return false
    }
    return true
  }

  #rebuild(): void {
    const live: Interval<K, T>[] = this.#pending
    const collect = (node: TreeNode<K, T> | undefined) => {
      if (!node) return
      for (const interval of node.byLow) if (!interval.removed) live.push(interval)
      collect(node.left)
      collect(node.right)
    }
    collect(this.#tree)
    this.#pending = []
    this.#inTree = live.length
    this.#removedInTree = 0
    this.#tree = this.#build(live)
  }

  #build(intervals: Interval<K, T>[]): TreeNode<K, T> | undefined {
    if (intervals.length === 0) return undefined
    const compare = this.#compare
    const points: K[] = []
    for (const { low, high } of intervals) {
      if (low !== undefined) points.push(low)
      if (high !== undefined) points.push(high)
    }
    points.sort(compare)
    const center = points[points.length >> 1]!
    const left: Interval<K, T>[] = []
    const right: Interval<K, T>[] = []
    const here: Interval<K, T>[] = []
    for (const interval of intervals) {
      if (interval.high !== undefined && compare(interval.high, center) < 0) left.push(interval)
      else if (interval.low !== undefined && compare(interval.low, center) > 0) right.push(interval)
      else here.push(interval)
    }
    const byLow = [...here].sort((a, b) =>
      a.low === undefined ? (b.low === undefined ? 0 : -1) : b.low === undefined ? 1 : compare(a.low, b.low),
    )
    const byHigh = here.sort((a, b) =>
      a.high === undefined
        ? b.high === undefined
          ? 0
          : -1
        : b.high === undefined
          ? 1
          : compare(b.high, a.high),
    )
    return { center, byLow, byHigh, left: this.#build(left), right: this.#build(right) }
  }
}
