/**
 * Intervals over numbers (and dates as milliseconds), answering "which intervals hold this point"
 * like IntervalIndex, but with the bounds in typed arrays indexed by an interval id: a stab reads
 * contiguous memory and touches no object but the items it returns. With 100,000 query
 * subscriptions in a large heap, reading one scattered interval object per candidate was most of
 * the cost of matching a change (see the resource package's benchmark). A centered interval tree
 * over ids, rebuilt lazily, plus ids added since the last build, scanned one by one.
 */
import type { Transition } from './transition.js'

const LOW_OPEN = 1
const HIGH_OPEN = 2
const REMOVED = 4
const MIN_PENDING = 32

interface Node {
  readonly center: number
  /** Ids of the intervals holding `center`, by low ascending, and their lows (a scan reads no id's bounds). */
  readonly byLow: Int32Array
  readonly lows: Float64Array
  /** The same ids, by high descending, and their highs. */
  readonly byHigh: Int32Array
  readonly highs: Float64Array
  readonly left: Node | undefined
  readonly right: Node | undefined
}

export class NumberIntervals<T> {
  #lows = new Float64Array(64)
  #highs = new Float64Array(64)
  #flags = new Uint8Array(64)
  #items: (T | undefined)[] = []
  /** Ids free for reuse: neither in the tree nor pending. */
  #free: number[] = []
  #next = 0
  #tree: Node | undefined = undefined
  #pending: number[] = []
  #inTree = 0
  #removedInTree = 0
  /** Removed ids still in the tree, freed when it is rebuilt. */
  #removedIds: number[] = []
  /** Lookups under way: ids a caller still holds must not be reused, nor the tree rebuilt. */
  #busy = 0
  /** Ids of one lookup, reused between lookups (a nested one, from a visitor, takes a fresh array). */
  #scratch: number[] | undefined = undefined

  get size(): number {
    return this.#inTree - this.#removedInTree + this.#pending.length
  }

  /** Files `item` under [low, high] (undefined: unbounded); returns the id to hand back to `remove`. */
  add(low: number | undefined, high: number | undefined, item: T, lowOpen = false, highOpen = false): number {
    const id = this.#free.length > 0 && this.#busy === 0 ? this.#free.pop()! : this.#allocate()
    this.#lows[id] = low ?? Number.NEGATIVE_INFINITY
    this.#highs[id] = high ?? Number.POSITIVE_INFINITY
    this.#flags[id] =
      (lowOpen && low !== undefined ? LOW_OPEN : 0) | (highOpen && high !== undefined ? HIGH_OPEN : 0)
    this.#items[id] = item
    this.#pending.push(id)
    return id
  }

  remove(id: number): void {
    const flags = this.#flags
    if ((flags[id]! & REMOVED) !== 0) return
    flags[id] = flags[id]! | REMOVED
    this.#items[id] = undefined
    const pending = this.#pending
    const at = pending.indexOf(id)
    if (at >= 0) {
      pending[at] = pending[pending.length - 1]!
      pending.pop()
      // A lookup under way may hold the id: it is freed at the next rebuild instead.
      if (this.#busy === 0) this.#free.push(id)
      else this.#removedIds.push(id)
    } else {
      this.#removedInTree++
      this.#removedIds.push(id)
    }
  }

  /** Calls `visit` with the item of every interval containing `point`. */
  stab(point: number, visit: (item: T) => void): void {
    this.overlap(point, point, visit)
  }

  /** Calls `visit` with the item of every interval that shares a point with `[low, high]`. */
  overlap(low: number, high: number, visit: (item: T) => void): void {
    const found: number[] = []
    this.#busy++
    try {
      this.#collect(low, high, found)
      for (let i = 0; i < found.length; i++) {
        const id = found[i]!
        if ((this.#flags[id]! & REMOVED) === 0) visit(this.#items[id]!)
      }
    } finally {
      this.#busy--
    }
  }

  /**
   * The transitions of a value moving from point `pb` to `pa` (undefined: no point): intervals
   * holding `pb` are updates when they hold `pa` too, else leaves; those holding only `pa` are
   * enters. Returns how many it visited.
   */
  classify(
    pb: number | undefined,
    pa: number | undefined,
    visit: (item: T, transition: Transition) => void,
  ): number {
    const found = this.#scratch ?? []
    this.#scratch = undefined
    this.#busy++
    let visited = 0
    try {
      const flags = this.#flags
      const items = this.#items
      if (pb !== undefined) {
        this.#collect(pb, pb, found)
        for (let i = 0; i < found.length; i++) {
          const id = found[i]!
          if ((flags[id]! & REMOVED) !== 0) continue
          visited++
          visit(items[id]!, pa !== undefined && this.#holds(id, pa) ? 'update' : 'leave')
        }
        found.length = 0
      }
      if (pa !== undefined) {
        this.#collect(pa, pa, found)
        for (let i = 0; i < found.length; i++) {
          const id = found[i]!
          if ((flags[id]! & REMOVED) !== 0 || (pb !== undefined && this.#holds(id, pb))) continue
          visited++
          visit(items[id]!, 'enter')
        }
      }
    } finally {
      found.length = 0
      this.#scratch = found
      this.#busy--
    }
    return visited
  }

  #allocate(): number {
    const id = this.#next++
    if (id === this.#lows.length) {
      const grow = <A extends Float64Array | Uint8Array>(from: A, make: (n: number) => A): A => {
        const to = make(from.length * 2)
        to.set(from)
        return to
      }
      this.#lows = grow(this.#lows, (n) => new Float64Array(n))
      this.#highs = grow(this.#highs, (n) => new Float64Array(n))
      this.#flags = grow(this.#flags, (n) => new Uint8Array(n))
    }
    return id
  }

  /** Whether interval `id` shares a point with [low, high]. */
  #meets(id: number, low: number, high: number): boolean {
    const flags = this.#flags[id]!
    const l = this.#lows[id]!
    if (high < l || (high === l && (flags & LOW_OPEN) !== 0)) return false
    const h = this.#highs[id]!
    return !(low > h || (low === h && (flags & HIGH_OPEN) !== 0))
  }

  #holds(id: number, point: number): boolean {
    return this.#meets(id, point, point)
  }

  /** Appends the ids of the intervals sharing a point with [low, high] (removed ones included). */
  #collect(low: number, high: number, out: number[]): void {
    const live = this.#inTree - this.#removedInTree
    if (
      this.#busy <= 1 &&
      (this.#pending.length > MIN_PENDING + Math.sqrt(live) || this.#removedInTree > live)
    )
      this.#rebuild()
    const pending = this.#pending
    for (let i = 0; i < pending.length; i++) {
      const id = pending[i]!
      if (this.#meets(id, low, high)) out.push(id)
    }
    const flags = this.#flags
    const stack: Node[] = []
    let node = this.#tree
    while (node) {
      if (high < node.center) {
        // Every interval here reaches past `high` (to the center): those starting at or before it meet.
        const { byLow, lows } = node
        for (let i = 0; i < byLow.length; i++) {
          const l = lows[i]!
          if (l > high) break
          const id = byLow[i]!
          if (l < high || (flags[id]! & LOW_OPEN) === 0) out.push(id)
        }
        node = node.left
      } else if (low > node.center) {
        // Every interval here starts before `low` (at the center): those ending at or after it meet.
        const { byHigh, highs } = node
        for (let i = 0; i < byHigh.length; i++) {
          const h = highs[i]!
          if (h < low) break
          const id = byHigh[i]!
          if (h > low || (flags[id]! & HIGH_OPEN) === 0) out.push(id)
        }
        node = node.right
      } else {
        // [low, high] holds the center, which every interval here reaches: both sides may meet too.
        const byLow = node.byLow
        for (let i = 0; i < byLow.length; i++) {
          const id = byLow[i]!
          if (this.#meets(id, low, high)) out.push(id)
        }
        if (node.right) stack.push(node.right)
        node = node.left
      }
      if (!node) node = stack.pop()
    }
  }

  #rebuild(): void {
    const flags = this.#flags
    const live: number[] = this.#pending
    const gather = (node: Node | undefined) => {
      if (!node) return
      for (const id of node.byLow) if ((flags[id]! & REMOVED) === 0) live.push(id)
      gather(node.left)
      gather(node.right)
    }
    gather(this.#tree)
    for (const id of this.#removedIds) this.#free.push(id)
    this.#removedIds = []
    this.#pending = []
    this.#inTree = live.length
    this.#removedInTree = 0
    this.#tree = this.#build(live)
  }

  #build(ids: number[]): Node | undefined {
    if (ids.length === 0) return undefined
    const lows = this.#lows
    const highs = this.#highs
    const points: number[] = []
    for (const id of ids) {
      if (lows[id]! !== Number.NEGATIVE_INFINITY) points.push(lows[id]!)
      if (highs[id]! !== Number.POSITIVE_INFINITY) points.push(highs[id]!)
    }
    points.sort((a, b) => a - b)
    // Only unbounded intervals: they all hold 0, the center of a single node.
    const center = points.length === 0 ? 0 : points[points.length >> 1]!
    const left: number[] = []
    const right: number[] = []
    const here: number[] = []
    for (const id of ids) {
      if (highs[id]! < center) left.push(id)
      else if (lows[id]! > center) right.push(id)
      else here.push(id)
    }
    const byLow = Int32Array.from(here).sort((a, b) => lows[a]! - lows[b]! || a - b)
    const byHigh = Int32Array.from(here).sort((a, b) => highs[b]! - highs[a]! || a - b)
    return {
      center,
      byLow,
      lows: Float64Array.from(byLow, (id) => lows[id]!),
      byHigh,
      highs: Float64Array.from(byHigh, (id) => highs[id]!),
      left: this.#build(left),
      right: this.#build(right),
    }
  }
}
