/**
 * The index entries of one attribute path: equality keys in a hash, range probes in interval trees
 * per domain. Items are whatever the caller files (a subscription, or an entry that still needs its
 * predicate). Lookups take the attribute's value, a scalar or an array.
 */
import { type Interval, IntervalIndex } from './interval-index.js'
import { type ClassifyVisitor, NumberIntervals, type RunVisitor } from './number-intervals.js'
import type { Domain, EqualKey, Probe, RangeProbe } from './plan.js'
import type { Transition } from './transition.js'
import { compareText } from './values.js'

/**
 * Numbers and dates (epoch milliseconds) in typed arrays; text in an IntervalIndex. A class with its
 * three fields always present: a change reads them by name (one shape), not by a domain key.
 */
class Trees<T> {
  number: NumberIntervals<T> | undefined = undefined
  date: NumberIntervals<T> | undefined = undefined
  string: IntervalIndex<string, T> | undefined = undefined
}

/**
 * More than one item under one equality key. A key with a single item (most keys once the runtime
 * groups subscriptions with the same conditions) maps to the item itself: a change reads no set.
 */
class Many<T> {
  readonly items = new Set<T>()
}
/** What `add` returns for `remove`: a numeric interval's id, or a text interval. */
export type RangeHandle<T> = number | Interval<string, T> | undefined
const DOMAINS: readonly Domain[] = ['number', 'string', 'date']
/** The order of the array-span lookup (numbers, or text by code point). */
const order = (a: number | string, b: number | string) =>
  typeof a === 'number' ? a - (b as number) : compareText(a, b as string)
/** A value with no equality key (an object, a NaN). */
const NO_KEY = Symbol('no key')

/** The equality key of a scalar value: null and missing are one key. */
function keyOf(value: unknown): EqualKey | typeof NO_KEY {
  switch (typeof value) {
    case 'undefined':
      return null
    case 'string':
    case 'boolean':
      return value
    case 'number':
      return Number.isNaN(value) ? NO_KEY : value
    case 'bigint':
      return Number(value)
    default:
      return value === null ? null : NO_KEY
  }
}

/** Where a scalar value sits in a domain's order, or undefined when it has no place there. */
function pointOf(value: unknown, domain: Domain): number | string | undefined {
  switch (typeof value) {
    case 'string':
      if (domain === 'string') return value
      if (domain === 'date') {
        const ms = Date.parse(value)
        return Number.isNaN(ms) ? undefined : ms
      }
      return undefined
    case 'number':
      return domain === 'string' || Number.isNaN(value) ? undefined : value
    case 'bigint':
      return domain === 'number' ? Number(value) : undefined
    case 'object':
      if (domain === 'date' && value instanceof Date) {
        const ms = value.getTime()
        return Number.isNaN(ms) ? undefined : ms
      }
      return undefined
    default:
      return undefined
  }
}

export class ProbeTable<T> {
  readonly #equal = new Map<EqualKey, T | Many<T>>()
  /** Ranges of one condition: an array element must lie inside. */
  readonly #elements = new Trees<T>()
  /** Merged ranges of an `and` (`spanning`): each bound may be met by another array element. */
  readonly #spans = new Trees<T>()
  #size = 0
  /** Range probes filed: none, and a change of this attribute reads no tree. */
  #ranges = 0
  /** The intervals of one text lookup, kept between changes (see #classifyText). */
  #scratch: Interval<string, T>[] | undefined = undefined

  get size(): number {
    return this.#size
  }

  /** Files `item` under `probe`; returns the interval to hand back to `remove` for ranges. */
  add(probe: Probe, item: T): RangeHandle<T> {
    this.#size++
    if (probe.kind === 'equal') {
      const bucket = this.#equal.get(probe.key)
      if (bucket === undefined) this.#equal.set(probe.key, item)
      else if (bucket instanceof Many) bucket.items.add(item)
      else if (bucket !== item) {
        const many = new Many<T>()
        many.items.add(bucket)
        many.items.add(item)
        this.#equal.set(probe.key, many)
      }
      return undefined
    }
    this.#ranges++
    const trees = probe.spanning ? this.#spans : this.#elements
    if (probe.domain === 'string') {
      const tree = (trees.string ??= new IntervalIndex<string, T>(compareText))
      return tree.add(
        probe.low as string | undefined,
        probe.high as string | undefined,
        item,
        probe.lowOpen,
        probe.highOpen,
      )
    }
    let tree = trees[probe.domain]
    if (!tree) trees[probe.domain] = tree = new NumberIntervals<T>()
    return tree.add(
      probe.low as number | undefined,
      probe.high as number | undefined,
      item,
      probe.lowOpen,
      probe.highOpen,
    )
  }

  /**
   * Keeps a payload with a numeric or date range's interval (see NumberIntervals.setPayload); false
   * for other probes, whose visits carry none.
   */
  setPayload(probe: Probe, handle: RangeHandle<T>, first: unknown, second: unknown): boolean {
    if (probe.kind !== 'range' || probe.domain === 'string') return false
    const trees = probe.spanning ? this.#spans : this.#elements
    trees[probe.domain]!.setPayload(handle as number, first, second)
    return true
  }

  remove(probe: Probe, item: T, handle: RangeHandle<T>): void {
    this.#size--
    if (probe.kind === 'equal') {
      // The same key twice (`a=1|a=1`) was filed once.
      const bucket = this.#equal.get(probe.key)
      if (bucket === item) this.#equal.delete(probe.key)
      else if (bucket instanceof Many && bucket.items.delete(item) && bucket.items.size === 1)
        this.#equal.set(probe.key, bucket.items.values().next().value as T)
      return
    }
    this.#ranges--
    const trees = probe.spanning ? this.#spans : this.#elements
    const domain = (probe as RangeProbe).domain
    if (domain === 'string') {
      const tree = trees.string!
      tree.remove(handle as Interval<string, T>)
      if (tree.size === 0) trees.string = undefined
      return
    }
    const tree = trees[domain]!
    tree.remove(handle as number)
    if (tree.size === 0) trees[domain] = undefined
  }

  /** Every item whose probe the value meets (an item may come more than once for an array). */
  find(value: unknown, take: (item: T) => void): void {
    if (Array.isArray(value)) {
      this.#findArray(value, take)
      return
    }
    this.#findEqual(value, take)
    for (const domain of DOMAINS) {
      const elements = this.#elements[domain]
      const spans = this.#spans[domain]
      if (!elements && !spans) continue
      const point = pointOf(value, domain)
      if (point === undefined) continue
      stab(elements, point, take)
      stab(spans, point, take)
    }
  }

  /**
   * The transitions of items filed with a single exact probe, for a change of this attribute from
   * `before` to `after` (`present*` false: no record). Scalars are classified straight from the
   * hash and the trees (an interval found at the old value is checked against the new one), with no
   * per-item state; arrays go through sets. Returns how many items it visited. `runs`, when given,
   * takes the numeric trees' runs whole (see RunVisitor).
   */
  classify(
    presentBefore: boolean,
    before: unknown,
    presentAfter: boolean,
    after: unknown,
    visit: ClassifyVisitor<T>,
    runs?: RunVisitor,
  ): number {
    if (Array.isArray(before) || Array.isArray(after)) {
      const was = new Set<T>()
      const now = new Set<T>()
      if (presentBefore)
        this.find(before, (item) => {
          was.add(item)
        })
      if (presentAfter)
        this.find(after, (item) => {
          now.add(item)
        })
      let visited = was.size
      for (const item of was) visit(item, now.has(item) ? 'update' : 'leave', undefined, undefined)
      for (const item of now)
        if (!was.has(item)) {
          visited++
          visit(item, 'enter', undefined, undefined)
        }
      return visited
    }
    let visited = 0
    if (this.#equal.size > 0) {
      // Straight from the buckets: no closure per change, none per item.
      const kb = presentBefore ? keyOf(before) : NO_KEY
      const ka = presentAfter ? keyOf(after) : NO_KEY
      if (kb !== NO_KEY && kb === ka) visited += visitBucket(this.#equal.get(kb), 'update', visit)
      else {
        if (kb !== NO_KEY) visited += visitBucket(this.#equal.get(kb), 'leave', visit)
        if (ka !== NO_KEY) visited += visitBucket(this.#equal.get(ka), 'enter', visit)
      }
    }
    if (this.#ranges === 0) return visited
    // Each domain by name (no keyed read by domain per change).
    const elements = this.#elements
    const spans = this.#spans
    if (elements.number !== undefined || spans.number !== undefined) {
      const pb = presentBefore ? (pointOf(before, 'number') as number | undefined) : undefined
      const pa = presentAfter ? (pointOf(after, 'number') as number | undefined) : undefined
      if (pb !== undefined || pa !== undefined) {
        if (elements.number !== undefined) visited += elements.number.classify(pb, pa, visit, runs)
        if (spans.number !== undefined) visited += spans.number.classify(pb, pa, visit, runs)
      }
    }
    if (elements.string !== undefined || spans.string !== undefined) {
      const pb = presentBefore ? pointOf(before, 'string') : undefined
      const pa = presentAfter ? pointOf(after, 'string') : undefined
      if (pb !== undefined || pa !== undefined) {
        if (elements.string !== undefined) visited += this.#classifyText(elements.string, pb, pa, visit)
        if (spans.string !== undefined) visited += this.#classifyText(spans.string, pb, pa, visit)
      }
    }
    if (elements.date !== undefined || spans.date !== undefined) {
      const pb = presentBefore ? (pointOf(before, 'date') as number | undefined) : undefined
      const pa = presentAfter ? (pointOf(after, 'date') as number | undefined) : undefined
      if (pb !== undefined || pa !== undefined) {
        if (elements.date !== undefined) visited += elements.date.classify(pb, pa, visit, runs)
        if (spans.date !== undefined) visited += spans.date.classify(pb, pa, visit, runs)
      }
    }
    return visited
  }

  /**
   * One tree's transitions: intervals holding the old point are updates when they hold the new
   * one too, else leaves; those holding only the new point are enters. The intervals are gathered
   * into a reused array (a nested change, from inside `visit`, takes a fresh one).
   */
  #classifyText(
    tree: IntervalIndex<string, T>,
    pb: number | string | undefined,
    pa: number | string | undefined,
    visit: ClassifyVisitor<T>,
  ): number {
    const found = this.#scratch ?? []
    this.#scratch = undefined
    let visited = 0
    if (typeof pb === 'string') {
      tree.collect(pb, pb, found)
      for (let i = 0; i < found.length; i++) {
        const interval = found[i]!
        if (interval.removed) continue
        visited++
        visit(
          interval.item,
          typeof pa === 'string' && tree.contains(interval, pa) ? 'update' : 'leave',
          undefined,
          undefined,
        )
      }
      found.length = 0
    }
    if (typeof pa === 'string') {
      tree.collect(pa, pa, found)
      for (let i = 0; i < found.length; i++) {
        const interval = found[i]!
        if (interval.removed || (typeof pb === 'string' && tree.contains(interval, pb))) continue
        visited++
        visit(interval.item, 'enter', undefined, undefined)
      }
      found.length = 0
    }
    this.#scratch = found
    return visited
  }

  #findEqual(value: unknown, take: (item: T) => void): void {
    if (this.#equal.size === 0) return
    const key = keyOf(value)
    if (key === NO_KEY) return
    const bucket = this.#equal.get(key)
    if (bucket instanceof Many) bucket.items.forEach(take)
    else if (bucket !== undefined) take(bucket)
  }

  /**
   * An array matches a condition when some element does: equalities and single-condition ranges are
   * looked up element by element. A merged `and` of two range conditions holds when some element is
   * above the lower bound and some (maybe another) below the upper one: those intervals are searched
   * for overlap with [smallest, largest] element of each domain.
   */
  #findArray(values: readonly unknown[], take: (item: T) => void): void {
    for (const value of values) {
      this.#findEqual(value, take)
      for (const domain of DOMAINS) {
        const tree = this.#elements[domain]
        if (!tree) continue
        const point = pointOf(value, domain)
        if (point !== undefined) stab(tree, point, take)
      }
    }
    for (const domain of DOMAINS) {
      const tree = this.#spans[domain]
      if (!tree) continue
      let low: number | string | undefined
      let high: number | string | undefined
      for (const value of values) {
        const point = pointOf(value, domain)
        if (point === undefined) continue
        if (low === undefined || order(point, low) < 0) low = point
        if (high === undefined || order(point, high) > 0) high = point
      }
      if (low === undefined) continue
      if (domain === 'string') (tree as IntervalIndex<string, T>).overlap(low as string, high as string, take)
      else (tree as NumberIntervals<T>).overlap(low as number, high as number, take)
    }
  }
}

/** Visits the item or items of an equality bucket with one transition; how many it visited. */
function visitBucket<T>(
  bucket: T | Many<T> | undefined,
  transition: Transition,
  visit: ClassifyVisitor<T>,
): number {
  if (bucket === undefined) return 0
  if (!(bucket instanceof Many)) {
    visit(bucket, transition, undefined, undefined)
    return 1
  }
  let visited = 0
  for (const item of bucket.items) {
    visited++
    visit(item, transition, undefined, undefined)
  }
  return visited
}

/** The items of `tree` (either kind) holding `point` (of that tree's domain). */
function stab<T>(
  tree: NumberIntervals<T> | IntervalIndex<string, T> | undefined,
  point: number | string,
  take: (item: T) => void,
): void {
  if (tree === undefined) return
  if (tree instanceof NumberIntervals) tree.stab(point as number, take)
  else tree.stab(point as string, take)
}
