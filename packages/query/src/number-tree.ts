/**
 * The built part of NumberIntervals: a centered interval tree laid out flat, in a few typed arrays
 * and one array of entries, rather than as node objects each with its own arrays. With 100,000
 * query subscriptions in a large heap, a node of objects cost a cache miss per object read (the
 * node, each of its typed arrays and their backing stores, its entries): about ten per node on a
 * path of ten or more nodes, half of matching a change in the resource package's benchmark. Here a
 * node is five numbers in one array, and its intervals a run of positions in arrays shared by all
 * nodes, each position holding the interval's bounds, open flags, item and payload side by side
 * (the payload's two slots in one array, the items in another: a run that delivers from the payload
 * reads two slots per hit).
 *
 * A node's intervals all hold its center; each order of them (by low ascending, by high descending,
 * a closed bound before an open one at the same value) makes those holding a point on one side of
 * the center a prefix. `classify` reads a change's transitions as runs of those prefixes and hands
 * out the entries (item and payload) kept at those positions: no bound check, no id lookup per hit.
 */
import type { Transition } from './transition.js'

/** A visitor of `classify`: the item, what the change did to it, and its payload (undefined: none). */
export type ClassifyVisitor<T> = (item: T, transition: Transition, first: unknown, second: unknown) => void

/**
 * A visitor of a whole run of `classify`: positions [from, to) of `items` (an undefined item was
 * removed: skip it) and of `payloads`, two slots per position (first, second; both undefined for a
 * removed item), all with `transition`. Returns how many items it visited. A caller that delivers
 * from the payload loops over the run itself, one call per run instead of one per item, and reads
 * the item only where the payload's first slot is empty (two slots per hit, not three).
 */
export type RunVisitor = (
  items: readonly unknown[],
  payloads: readonly unknown[],
  from: number,
  to: number,
  transition: Transition,
) => number

export const LOW_OPEN = 1
export const HIGH_OPEN = 2

/** Where a point lies against a node's center, or NONE (no point). */
const NONE = 0
const BELOW = 1
const ABOVE = 2
const AT = 3

const NO_NODE = -1
/** Per node in `#links`: left, right (NO_NODE: none), start and end of its positions. */
const STRIDE = 4

/** What the tree is built from: bounds, open flags and entry parts, by interval id. */
export interface TreeSource {
  readonly lows: Float64Array
  readonly highs: Float64Array
  readonly flags: Uint8Array
  readonly items: readonly unknown[]
  readonly first: readonly unknown[]
  readonly second: readonly unknown[]
}

/**
 * Intervals in one order: ids, bounds, open flags, items, and payloads (first, second) by position.
 */
interface Order {
  readonly ids: Int32Array
  readonly lows: Float64Array
  readonly highs: Float64Array
  readonly flags: Uint8Array
  readonly items: unknown[]
  readonly payloads: unknown[]
}

/** `n` undefined slots, filled by push: a packed array (no hole checks on reads). */
function slots(n: number): unknown[] {
  const out: unknown[] = []
  for (let i = 0; i < n; i++) out.push(undefined)
  return out
}

function order(n: number): Order {
  return {
    ids: new Int32Array(n),
    lows: new Float64Array(n),
    highs: new Float64Array(n),
    flags: new Uint8Array(n),
    items: slots(n),
    payloads: slots(2 * n),
  }
}

export class NumberTree {
  /** Each node's center, and its links (see STRIDE): integers in an Int32Array, used as indexes. */
  readonly #centers: Float64Array
  readonly #links: Int32Array
  readonly #root: number
  readonly #byLow: Order
  readonly #byHigh: Order
  /** Each id's position in the two orders (ids up to the source's capacity at build time). */
  readonly #posLow: Int32Array
  readonly #posHigh: Int32Array
  #nodes = 0
  #filled = 0

  /** Builds the tree of intervals `ids` (none removed) from `source`. */
  constructor(ids: readonly number[], source: TreeSource) {
    const n = ids.length
    // Every node holds at least one interval (its center is one of their bounds): n nodes at most.
    this.#centers = new Float64Array(Math.max(n, 1))
    this.#links = new Int32Array(STRIDE * Math.max(n, 1))
    this.#byLow = order(n)
    this.#byHigh = order(n)
    this.#posLow = new Int32Array(source.lows.length)
    this.#posHigh = new Int32Array(source.lows.length)
    this.#root = this.#build(ids, source)
  }

  /** Ids of the intervals in the tree (removed ones included), in no particular order. */
  get ids(): Int32Array {
    return this.#byLow.ids
  }

  /** Sets the entry of interval `id` (in the tree) in both orders; item undefined: removed. */
  setEntry(id: number, item: unknown, first: unknown, second: unknown): void {
    setAt(this.#byLow, this.#posLow[id]!, item, first, second)
    setAt(this.#byHigh, this.#posHigh[id]!, item, first, second)
  }

  /**
   * The transitions of a value moving from `pb` to `pa` (undefined: no point), down the paths of the
   * two points (together while they agree). Where both lie on the same side of a node's center,
   * their hits are two prefixes of one order: runs, no per-item check. Elsewhere an item holding one
   * point is checked against the other only at a node both paths reach; below the node where the
   * paths part, no interval holds the other point. Removed intervals (no item) are skipped.
   */
  classify<T>(
    pb: number | undefined,
    pa: number | undefined,
    visit: ClassifyVisitor<T>,
    runs: RunVisitor = (items, payloads, from, to, transition) =>
      run(items, payloads, from, to, transition, visit),
  ): number {
    return this.#root === NO_NODE ? 0 : this.#walk(this.#root, pb, pa, visit, runs)
  }

  #walk<T>(
    from: number,
    pb: number | undefined,
    pa: number | undefined,
    visit: ClassifyVisitor<T>,
    runs: RunVisitor,
  ): number {
    const centers = this.#centers
    const links = this.#links
    let visited = 0
    let node = from
    while (node !== NO_NODE) {
      const m = STRIDE * node
      const center = centers[node]!
      const start = links[m + 2]!
      const end = links[m + 3]!
      const sb: number = pb === undefined ? NONE : pb < center ? BELOW : pb > center ? ABOVE : AT
      const sa: number = pa === undefined ? NONE : pa < center ? BELOW : pa > center ? ABOVE : AT
      if (sb === sa && sb !== AT) {
        const below = sb === BELOW
        const { items, payloads } = below ? this.#byLow : this.#byHigh
        const kb = below ? this.#lowPrefix(start, end, pb!) : this.#highPrefix(start, end, pb!)
        const ka = below ? this.#lowPrefix(start, end, pa!) : this.#highPrefix(start, end, pa!)
        const k = Math.min(kb, ka)
        if (k > start) visited += runs(items, payloads, start, k, 'update')
        if (kb > ka) visited += runs(items, payloads, ka, kb, 'leave')
        else if (ka > kb) visited += runs(items, payloads, kb, ka, 'enter')
      } else if (sb === NONE || sa === NONE) {
        // One path alone: the point's hits here are one run (unless it lies at the center).
        const alone = sb === NONE ? sa : sb
        const p = sb === NONE ? pa! : pb!
        const transition = sb === NONE ? 'enter' : 'leave'
        if (alone === AT) visited += this.#oneSide(start, end, AT, p, undefined, undefined, transition, visit)
        else {
          const k = alone === BELOW ? this.#lowPrefix(start, end, p) : this.#highPrefix(start, end, p)
          const { items, payloads } = alone === BELOW ? this.#byLow : this.#byHigh
          if (k > start) visited += runs(items, payloads, start, k, transition)
        }
      } else {
        visited += this.#oneSide(start, end, sb, pb!, pa, 'update', 'leave', visit)
        visited += this.#oneSide(start, end, sa, pa!, pb, undefined, 'enter', visit)
      }
      // A point at the center is held by no interval of either subtree.
      const nextB: number = sb === BELOW || sb === ABOVE ? sb : NONE
      const nextA: number = sa === BELOW || sa === ABOVE ? sa : NONE
      const left = links[m]!
      const right = links[m + 1]!
      if (nextB !== NONE && nextA !== NONE && nextB !== nextA) {
        // The paths part: each goes on alone (its hits below are leaves, or enters).
        const alone = nextB === BELOW ? left : right
        if (alone !== NO_NODE) visited += this.#walk(alone, pb, undefined, visit, runs)
        pb = undefined
        node = nextA === BELOW ? left : right
      } else if (nextB === NONE && nextA === NONE) break
      else {
        const side = nextB !== NONE ? nextB : nextA
        if (nextB === NONE) pb = undefined
        if (nextA === NONE) pa = undefined
        node = side === BELOW ? left : right
      }
    }
    return visited
  }

  /**
   * The hits of point `p` (lying `side` of the node's center) among positions [start, end): `both`
   * when the interval also holds `other`, else `alone`; `both` undefined: skip those (they were
   * visited as the other point's).
   */
  #oneSide<T>(
    start: number,
    end: number,
    side: number,
    p: number,
    other: number | undefined,
    both: Transition | undefined,
    alone: Transition,
    visit: ClassifyVisitor<T>,
  ): number {
    let visited = 0
    const { lows, highs, flags, items, payloads } = side === ABOVE ? this.#byHigh : this.#byLow
    const stop =
      side === BELOW ? this.#lowPrefix(start, end, p) : side === ABOVE ? this.#highPrefix(start, end, p) : end
    for (let i = start; i < stop; i++) {
      if (side === AT && !holds(lows[i]!, highs[i]!, flags[i]!, p)) continue
      const holdsOther = other !== undefined && holds(lows[i]!, highs[i]!, flags[i]!, other)
      if (holdsOther && both === undefined) continue
      const item = items[i] as T | undefined
      if (item === undefined) continue
      visited++
      visit(item, holdsOther ? both! : alone, payloads[2 * i], payloads[2 * i + 1])
    }
    return visited
  }

  /** The end of the positions, by low, that start at or before `p` (so hold it: p < center). */
  #lowPrefix(start: number, end: number, p: number): number {
    const { lows, flags } = this.#byLow
    let k = start
    while (k < end) {
      const l = lows[k]!
      if (l < p || (l === p && (flags[k]! & LOW_OPEN) === 0)) k++
      else break
    }
    return k
  }

  /** The end of the positions, by high, that end at or after `p` (so hold it: p > center). */
  #highPrefix(start: number, end: number, p: number): number {
    const { highs, flags } = this.#byHigh
    let k = start
    while (k < end) {
      const h = highs[k]!
      if (h > p || (h === p && (flags[k]! & HIGH_OPEN) === 0)) k++
      else break
    }
    return k
  }

  /** Appends the ids of the intervals sharing a point with [low, high] (removed ones included). */
  collect(low: number, high: number, out: number[]): void {
    const centers = this.#centers
    const links = this.#links
    const byLow = this.#byLow
    const byHigh = this.#byHigh
    const stack: number[] = []
    let node = this.#root
    while (node !== NO_NODE) {
      const m = STRIDE * node
      const center = centers[node]!
      const start = links[m + 2]!
      const end = links[m + 3]!
      if (high < center) {
        // Every interval here reaches past `high` (to the center): those starting at or before it meet.
        for (let i = start; i < end; i++) {
          const l = byLow.lows[i]!
          if (l > high || (l === high && (byLow.flags[i]! & LOW_OPEN) !== 0)) break
          out.push(byLow.ids[i]!)
        }
        node = links[m]!
      } else if (low > center) {
        // Every interval here starts before `low` (at the center): those ending at or after it meet.
        for (let i = start; i < end; i++) {
          const h = byHigh.highs[i]!
          if (h < low || (h === low && (byHigh.flags[i]! & HIGH_OPEN) !== 0)) break
          out.push(byHigh.ids[i]!)
        }
        node = links[m + 1]!
      } else {
        // [low, high] holds the center, which every interval here reaches: both sides may meet too.
        for (let i = start; i < end; i++)
          if (meets(byLow.lows[i]!, byLow.highs[i]!, byLow.flags[i]!, low, high)) out.push(byLow.ids[i]!)
        if (links[m + 1]! !== NO_NODE) stack.push(links[m + 1]!)
        node = links[m]!
      }
      if (node === NO_NODE && stack.length > 0) node = stack.pop()!
    }
  }

  /** Lays out the subtree of `ids` from the next free node and position; returns its node. */
  #build(ids: readonly number[], source: TreeSource): number {
    if (ids.length === 0) return NO_NODE
    const { lows, highs, flags } = source
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
    const node = this.#nodes++
    const start = this.#filled
    this.#filled += here.length
    this.#place(this.#byLow, this.#posLow, byLow, start, source)
    this.#place(this.#byHigh, this.#posHigh, byHigh, start, source)
    const m = STRIDE * node
    this.#centers[node] = center
    this.#links[m + 2] = start
    this.#links[m + 3] = start + here.length
    this.#links[m] = this.#build(left, source)
    this.#links[m + 1] = this.#build(right, source)
    return node
  }

  /** Writes `ids` in their order from position `start`, each with its bounds, flags and entry. */
  #place(to: Order, pos: Int32Array, ids: Int32Array, start: number, source: TreeSource): void {
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!
      const at = start + i
      to.ids[at] = id
      to.lows[at] = source.lows[id]!
      to.highs[at] = source.highs[id]!
      to.flags[at] = source.flags[id]! & (LOW_OPEN | HIGH_OPEN)
      to.items[at] = source.items[id]
      to.payloads[2 * at] = source.first[id]
      to.payloads[2 * at + 1] = source.second[id]
      pos[id] = at
    }
  }
}

function setAt(to: Order, at: number, item: unknown, first: unknown, second: unknown): void {
  to.items[at] = item
  to.payloads[2 * at] = first
  to.payloads[2 * at + 1] = second
}

/** Whether [l, h] (with open flags) shares a point with [low, high]. */
function meets(l: number, h: number, flags: number, low: number, high: number): boolean {
  if (high < l || (high === l && (flags & LOW_OPEN) !== 0)) return false
  return !(low > h || (low === h && (flags & HIGH_OPEN) !== 0))
}

function holds(l: number, h: number, flags: number, p: number): boolean {
  return meets(l, h, flags, p, p)
}

/** Visits the entries of positions [from, to) of one order (removed ones have no item). */
function run<T>(
  items: readonly unknown[],
  payloads: readonly unknown[],
  from: number,
  to: number,
  transition: Transition,
  visit: ClassifyVisitor<T>,
): number {
  let visited = 0
  for (let i = from; i < to; i++) {
    const item = items[i] as T | undefined
    if (item === undefined) continue
    visited++
    visit(item, transition, payloads[2 * i], payloads[2 * i + 1])
  }
  return visited
}
