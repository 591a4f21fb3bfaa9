/**
 * Intervals over numbers (and dates as milliseconds), answering "which intervals hold this point"
 * like IntervalIndex, but with the bounds in typed arrays indexed by an interval id: a stab reads
 * contiguous memory and touches no object but the items it returns. With 100,000 query
 * subscriptions in a large heap, reading one scattered interval object per candidate was most of
 * the cost of matching a change (see the resource package's benchmark). A centered interval tree
 * over ids, rebuilt lazily, plus ids added since the last build, scanned one by one.
 *
 * A node's intervals all hold its center, so those holding a point on one side of it are a prefix of
 * the node's order (by low for a point below, by high above). `classify` reads a change's transitions
 * as runs of those orders (the shorter prefix: updates; the rest of the longer one: leaves or
 * enters) and hands each run's items straight from an array of the node, so matching costs the
 * nodes on the two paths plus one array read per item, with no per-item bound check. An interval may
 * carry a payload of two values (`setPayload`), kept beside its item in the node and handed to the
 * visitor with it: a caller can deliver from the payload without reading the item.
 */

/** A visitor of `classify`: the item, what the change did to it, and its payload (undefined: none). */
export type ClassifyVisitor<T> = (item: T, transition: Transition, first: unknown, second: unknown) => void

import type { Transition } from './transition.js'

const LOW_OPEN = 1
const HIGH_OPEN = 2
const REMOVED = 4
/** Added since the last build: not in a node. */
const PENDING = 8
const MIN_PENDING = 32

/** Where a point lies against a node's center, or NONE (no point). */
const NONE = 0
const BELOW = 1
const ABOVE = 2
const AT = 3

interface Node<T> {
  readonly center: number
  /**
   * Ids of the intervals holding `center` by low ascending (a closed low before an open one at the
   * same value, so those holding a point below the center are a prefix), their lows, and their
   * entries: item and payload, three slots each (undefined once removed).
   */
  readonly byLow: Int32Array
  readonly lows: Float64Array
  readonly lowEntries: unknown[]
  /** The same by high descending (closed first), their highs and entries. */
  readonly byHigh: Int32Array
  readonly highs: Float64Array
  readonly highEntries: unknown[]
  readonly left: Node<T> | undefined
  readonly right: Node<T> | undefined
}

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
  #tree: Node<T> | undefined = undefined
  /** For an id in the tree: its node and its places in the node's two orders (see `remove`). */
  #nodeOf: (Node<T> | undefined)[] = []
  #posLow = new Int32Array(64)
  #posHigh = new Int32Array(64)
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
      this.#setEntry(id, undefined, undefined, undefined)
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
    if ((flags & PENDING) === 0) this.#setEntry(id, this.#items[id], first, second)
  }

  /** The entries of an id in the tree, in both orders of its node. */
  #setEntry(id: number, item: T | undefined, first: unknown, second: unknown): void {
    const node = this.#nodeOf[id]!
    const low = 3 * this.#posLow[id]!
    const high = 3 * this.#posHigh[id]!
    const { lowEntries, highEntries } = node
    lowEntries[low] = item
    lowEntries[low + 1] = first
    lowEntries[low + 2] = second
    highEntries[high] = item
    highEntries[high + 1] = first
    highEntries[high + 2] = second
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
   * visited.
   */
  classify(pb: number | undefined, pa: number | undefined, visit: ClassifyVisitor<T>): number {
    if (pb === undefined && pa === undefined) return 0
    this.#busy++
    try {
      this.#maybeRebuild()
      // Pending hits first, gathered before any visitor runs (it may add intervals: not visited).
      let visited = this.#pending.length > 0 ? this.#classifyPending(pb, pa, visit) : 0
      if (this.#tree !== undefined) visited += this.#walk(this.#tree, pb, pa, visit)
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

  /**
   * The tree part of `classify`, down the paths of `pb` and `pa` (together while they agree). Where
   * both points lie on the same side of a node's center their hits are two prefixes of one order:
   * runs, no per-item check. Elsewhere an item holding one point is checked against the other only
   * at a node both paths reach; below the node where the paths part, no interval holds the other point.
   */
  #walk(from: Node<T>, pb: number | undefined, pa: number | undefined, visit: ClassifyVisitor<T>): number {
    let visited = 0
    let node: Node<T> | undefined = from
    while (node !== undefined) {
      const center: number = node.center
      const sb: number = pb === undefined ? NONE : pb < center ? BELOW : pb > center ? ABOVE : AT
      const sa: number = pa === undefined ? NONE : pa < center ? BELOW : pa > center ? ABOVE : AT
      if (sb === sa && sb !== AT) {
        const below = sb === BELOW
        const items = below ? node.lowEntries : node.highEntries
        const kb = below ? this.#lowPrefix(node, pb!) : this.#highPrefix(node, pb!)
        const ka = below ? this.#lowPrefix(node, pa!) : this.#highPrefix(node, pa!)
        visited += run(items, 0, Math.min(kb, ka), 'update', visit)
        if (kb > ka) visited += run(items, ka, kb, 'leave', visit)
        else if (ka > kb) visited += run(items, kb, ka, 'enter', visit)
      } else {
        if (sb !== NONE) visited += this.#oneSide(node, sb, pb!, pa, 'update', 'leave', visit)
        if (sa !== NONE) visited += this.#oneSide(node, sa, pa!, pb, undefined, 'enter', visit)
      }
      // A point at the center is held by no interval of either subtree.
      const nextB: number = sb === BELOW || sb === ABOVE ? sb : NONE
      const nextA: number = sa === BELOW || sa === ABOVE ? sa : NONE
      if (nextB !== NONE && nextA !== NONE && nextB !== nextA) {
        // The paths part: each goes on alone (its hits below are leaves, or enters).
        const alone = nextB === BELOW ? node.left : node.right
        if (alone !== undefined) visited += this.#walk(alone, pb, undefined, visit)
        pb = undefined
        node = nextA === BELOW ? node.left : node.right
      } else if (nextB === NONE && nextA === NONE) break
      else {
        const side = nextB !== NONE ? nextB : nextA
        if (nextB === NONE) pb = undefined
        if (nextA === NONE) pa = undefined
        node = side === BELOW ? node.left : node.right
      }
    }
    return visited
  }

  /**
   * The hits of point `p` (lying `side` of the node's center) at one node: `both` when the item also
   * holds `other`, else `alone`; `both` undefined: skip those (they were visited as the other's).
   */
  #oneSide(
    node: Node<T>,
    side: number,
    p: number,
    other: number | undefined,
    both: Transition | undefined,
    alone: Transition,
    visit: ClassifyVisitor<T>,
  ): number {
    let visited = 0
    const ids = side === ABOVE ? node.byHigh : node.byLow
    const entries = side === ABOVE ? node.highEntries : node.lowEntries
    const end =
      side === BELOW ? this.#lowPrefix(node, p) : side === ABOVE ? this.#highPrefix(node, p) : ids.length
    for (let i = 0; i < end; i++) {
      const id = ids[i]!
      if (side === AT && !this.#holds(id, p)) continue
      const holdsOther = other !== undefined && this.#holds(id, other)
      if (holdsOther && both === undefined) continue
      const item = entries[3 * i] as T | undefined
      if (item === undefined) continue
      visited++
      visit(item, holdsOther ? both! : alone, entries[3 * i + 1], entries[3 * i + 2])
    }
    return visited
  }

  /** How many of the node's intervals, by low, start at or before `p` (so hold it: p < center). */
  #lowPrefix(node: Node<T>, p: number): number {
    const { lows, byLow } = node
    const flags = this.#flags
    let k = 0
    while (k < lows.length) {
      const l = lows[k]!
      if (l < p || (l === p && (flags[byLow[k]!]! & LOW_OPEN) === 0)) k++
      else break
    }
    return k
  }

  /** How many of the node's intervals, by high, end at or after `p` (so hold it: p > center). */
  #highPrefix(node: Node<T>, p: number): number {
    const { highs, byHigh } = node
    const flags = this.#flags
    let k = 0
    while (k < highs.length) {
      const h = highs[k]!
      if (h > p || (h === p && (flags[byHigh[k]!]! & HIGH_OPEN) === 0)) k++
      else break
    }
    return k
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
      this.#posLow = grow(this.#posLow, (n) => new Int32Array(n))
      this.#posHigh = grow(this.#posHigh, (n) => new Int32Array(n))
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
    const flags = this.#flags
    const stack: Node<T>[] = []
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
    const gather = (node: Node<T> | undefined) => {
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

  #build(ids: number[]): Node<T> | undefined {
    if (ids.length === 0) return undefined
    const lows = this.#lows
    const highs = this.#highs
    const flags = this.#flags
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
    // At equal bounds the closed one first: the holders of a point are then a prefix.
    const byLow = Int32Array.from(here).sort(
      (a, b) => lows[a]! - lows[b]! || (flags[a]! & LOW_OPEN) - (flags[b]! & LOW_OPEN) || a - b,
    )
    const byHigh = Int32Array.from(here).sort(
      (a, b) => highs[b]! - highs[a]! || (flags[a]! & HIGH_OPEN) - (flags[b]! & HIGH_OPEN) || a - b,
    )
    const node: Node<T> = {
      center,
      byLow,
      lows: Float64Array.from(byLow, (id) => lows[id]!),
      lowEntries: this.#entries(byLow),
      byHigh,
      highs: Float64Array.from(byHigh, (id) => highs[id]!),
      highEntries: this.#entries(byHigh),
      left: this.#build(left),
      right: this.#build(right),
    }
    for (let i = 0; i < byLow.length; i++) {
      this.#nodeOf[byLow[i]!] = node
      this.#posLow[byLow[i]!] = i
      this.#posHigh[byHigh[i]!] = i
      flags[byLow[i]!] = flags[byLow[i]!]! & ~PENDING
    }
    return node
  }

  /** Item and payload of each id, in that order. */
  #entries(ids: Int32Array): unknown[] {
    const entries = new Array<unknown>(3 * ids.length)
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!
      entries[3 * i] = this.#items[id]
      entries[3 * i + 1] = this.#first[id]
      entries[3 * i + 2] = this.#second[id]
    }
    return entries
  }
}

const TRANSITIONS: readonly Transition[] = ['update', 'leave', 'enter']

/** Visits the entries of positions [from, to) of a node's order (removed ones are undefined). */
function run<T>(
  entries: readonly unknown[],
  from: number,
  to: number,
  transition: Transition,
  visit: ClassifyVisitor<T>,
): number {
  let visited = 0
  for (let i = 3 * from; i < 3 * to; i += 3) {
    const item = entries[i] as T | undefined
    if (item === undefined) continue
    visited++
    visit(item, transition, entries[i + 1], entries[i + 2])
  }
  return visited
}
