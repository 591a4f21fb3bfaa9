/**
 * Intervals over numbers (and dates as milliseconds), answering "which intervals hold this point"
 * like IntervalIndex, but with the bounds in typed arrays indexed by an interval id: a stab reads
 * contiguous memory and touches no object but the items it returns. With 100,000 query
 * subscriptions in a large heap, reading one scattered interval object per candidate was most of
 * the cost of matching a change (see the resource package's benchmark). A centered interval tree
 * laid out flat (NumberTree), rebuilt lazily, plus ids added since the last build, scanned one by one.
 *
 * `classify` hands out a change's transitions straight from the tree's runs (see NumberTree). An
 * interval may carry a payload of two values (`setPayload`), kept beside its item in the tree and
 * handed to the visitor with it: a caller can deliver from the payload without reading the item.
 */
import { type ClassifyVisitor, HIGH_OPEN, LOW_OPEN, NumberTree, type RunVisitor } from './number-tree.js'
import type { Transition } from './transition.js'

export type { ClassifyVisitor, RunVisitor } from './number-tree.js'

const REMOVED = 4
/** Added since the last build: not in a node. */
const PENDING = 8
const MIN_PENDING = 32

export class NumberIntervals<T> {
  #lows = new Float64Array(64)
  #highs = new Float64Array(64)
  #flags = new Uint8Array(64)
  #items: (T | undefined)[] = []
  /** Each id's payload (see `setPayload`). */
  #first: unknown[] = []
  #second: unknown[] = []
  /** Ids free for reuse: neither in the tree nor pending. */
  #free: number[] = []
  #next = 0
  #tree: NumberTree | undefined = undefined
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
      PENDING |
      (lowOpen && low !== undefined ? LOW_OPEN : 0) |
      (highOpen && high !== undefined ? HIGH_OPEN : 0)
    this.#items[id] = item
    this.#first[id] = undefined
    this.#second[id] = undefined
    this.#pending.push(id)
    return id
  }

  remove(id: number): void {
    const flags = this.#flags
    if ((flags[id]! & REMOVED) !== 0) return
    flags[id] = flags[id]! | REMOVED
    this.#items[id] = undefined
    this.#first[id] = undefined
    this.#second[id] = undefined
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
      // Out of the node's runs at once (a lookup under way skips it from here on).
      this.#tree!.setEntry(id, undefined, undefined, undefined)
    }
  }

  /**
   * Keeps two values with interval `id` (from `add`), handed to `classify`'s visitor with its item;
   * undefined, undefined: none. A lookup under way sees the change from the next item it visits.
   */
  setPayload(id: number, first: unknown, second: unknown): void {
    const flags = this.#flags[id]!
    if ((flags & REMOVED) !== 0) return
    this.#first[id] = first
    this.#second[id] = second
    if ((flags & PENDING) === 0) this.#tree!.setEntry(id, this.#items[id], first, second)
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
   * enters. Each is visited once; one removed by a visitor is not visited after. Returns how many it
   * visited. With `runs`, the tree's runs of one transition go to it whole (see RunVisitor).
   */
  classify(
    pb: number | undefined,
    pa: number | undefined,
    visit: ClassifyVisitor<T>,
    runs?: RunVisitor,
  ): number {
    if (pb === undefined && pa === undefined) return 0
    this.#busy++
    try {
      this.#maybeRebuild()
      // Pending hits first, gathered before any visitor runs (it may add intervals: not visited).
      let visited = this.#pending.length > 0 ? this.#classifyPending(pb, pa, visit) : 0
      if (this.#tree !== undefined) visited += this.#tree.classify(pb, pa, visit, runs)
      return visited
    } finally {
      this.#busy--
    }
  }

  #classifyPending(pb: number | undefined, pa: number | undefined, visit: ClassifyVisitor<T>): number {
    const found = this.#scratch ?? []
    this.#scratch = undefined
    let visited = 0
    try {
      const pending = this.#pending
      for (let i = 0; i < pending.length; i++) {
        const id = pending[i]!
        const was = pb !== undefined && this.#holds(id, pb)
        const now = pa !== undefined && this.#holds(id, pa)
        if (was || now) found.push(id, was ? (now ? 0 : 1) : 2)
      }
      const flags = this.#flags
      const items = this.#items
      for (let i = 0; i < found.length; i += 2) {
        const id = found[i]!
        if ((flags[id]! & REMOVED) !== 0) continue
        visited++
        visit(items[id]!, TRANSITIONS[found[i + 1]!]!, this.#first[id], this.#second[id])
      }
    } finally {
      found.length = 0
      this.#scratch = found
    }
    return visited
  }

  #allocate(): number {
    const id = this.#next++
    if (id === this.#lows.length) {
      const grow = <A extends Float64Array | Int32Array | Uint8Array>(from: A, make: (n: number) => A): A => {
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
    this.#maybeRebuild()
    const pending = this.#pending
    for (let i = 0; i < pending.length; i++) {
      const id = pending[i]!
      if (this.#meets(id, low, high)) out.push(id)
    }
    this.#tree?.collect(low, high, out)
  }

  /** Rebuilds when enough was added or removed since the last build, unless a lookup is under way. */
  #maybeRebuild(): void {
    const live = this.#inTree - this.#removedInTree
    if (
      this.#busy <= 1 &&
      (this.#pending.length > MIN_PENDING + Math.sqrt(live) || this.#removedInTree > live)
    )
      this.#rebuild()
  }

  #rebuild(): void {
    const flags = this.#flags
    const live: number[] = this.#pending
    const ids = this.#tree?.ids
    if (ids !== undefined) for (const id of ids) if ((flags[id]! & REMOVED) === 0) live.push(id)
    for (const id of this.#removedIds) this.#free.push(id)
    this.#removedIds = []
    this.#pending = []
    this.#inTree = live.length
    this.#removedInTree = 0
    this.#tree =
      live.length === 0
        ? undefined
        : new NumberTree(live, {
            lows: this.#lows,
            highs: this.#highs,
            flags,
            items: this.#items,
            first: this.#first,
            second: this.#second,
          })
    for (const id of live) flags[id] = flags[id]! & ~PENDING
  }
}

const TRANSITIONS: readonly Transition[] = ['update', 'leave', 'enter']
