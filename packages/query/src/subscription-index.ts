/**
 * Live query subscriptions, indexed by their conditions so that a change is compared only with the
 * subscriptions it can concern: equality conditions in a hash per (attribute, value), range and
 * starts-with conditions in interval trees per (attribute, domain), and subscriptions with no usable
 * condition in a residual list checked on every change.
 */
import { type Accessor, type AccessorFactory, accessorFor } from './accessor.js'
import type { BoundFilter } from './bind.js'
import type { RunVisitor } from './number-tree.js'
import { type Probe, planFilter } from './plan.js'
import { compileFilter, type Predicate } from './predicate.js'
import { ProbeTable, type RangeHandle } from './probe-table.js'
import type { Transition } from './transition.js'

export type { RunVisitor } from './number-tree.js'
export type { Transition } from './transition.js'

/**
 * A visitor of `changes`: the subscription, what the change did to its result, and the payload set
 * with `setPayload` (undefined when none, or when the change was not classified by a range tree).
 */
export type ChangeVisitor<S> = (
  subscription: S,
  transition: Transition,
  first: unknown,
  second: unknown,
) => void

/**
 * Whether a subscription with this filter would be filed by one numeric or date range alone, so that
 * `setPayload` keeps its payload (`price=ge=1&lt=9`, `born=gt=2020-01-01`).
 */
export function filedByOneRange(filter: BoundFilter | undefined): boolean {
  const plan = filter ? planFilter(filter) : undefined
  if (plan === undefined || !plan.exact || plan.probes.length !== 1) return false
  const probe = plan.probes[0]!
  return probe.kind === 'range' && probe.domain !== 'string'
}

export interface QuerySubscriptionIndexOptions {
  /** Accessors for paths the default cannot read (relationships), as for `compileFilter`. */
  accessor?: AccessorFactory
}

interface Entry<S> {
  readonly subscription: S
  readonly matches: Predicate
  /** Where the entry is filed; undefined for the residual list. */
  readonly probes: Probe[] | undefined
  /**
   * Filed by one probe that is exactly its filter (`category==x`, `price=ge=1&lt=9`): its
   * transitions come straight from the lookups, filed as the subscription itself.
   */
  readonly simple: boolean
  /** Found through its probes = matches (an `or` of exact probes): no predicate call needed. */
  readonly exact: boolean
  readonly intervals: RangeHandle<unknown>[]
  /** The last change that collected this entry (deduplication without a Set per change). */
  mark: number
  /** The last change whose old / new value found this entry through its probes. */
  before: number
  after: number
}

/** The index of one attribute path. */
interface PathIndex<S> {
  readonly get: Accessor
  /** Subscriptions of simple entries. */
  readonly simple: ProbeTable<S>
  /** Every other filed entry. */
  readonly general: ProbeTable<Entry<S>>
}

/**
 * @example
 * const index = new QuerySubscriptionIndex<Client>()
 * index.add(client, bindFilter(parseQuery('breed=Lab&age=gt=3').filter!, types))
 * index.changes(oldValue, newValue, (client, transition) => deliver(client, transition))
 */
export class QuerySubscriptionIndex<S> {
  readonly #accessor: AccessorFactory | undefined
  readonly #entries = new Map<S, Entry<S>>()
  readonly #paths = new Map<string, PathIndex<S>>()
  /** The same path indexes in an array: a change loops over it without a Map iterator. */
  #pathList: PathIndex<S>[] = []
  readonly #residual = new Set<Entry<S>>()
  /** Entries that are not simple (residual ones included): none, and a change skips collecting them. */
  #notSimple = 0
  #epoch = 0

  constructor(options: QuerySubscriptionIndexOptions = {}) {
    this.#accessor = options.accessor
  }

  /** Live subscriptions. */
  get size(): number {
    return this.#entries.size
  }

  /** How many subscriptions are filed by a condition, and how many are checked on every change. */
  get stats(): { indexed: number; residual: number } {
    return { indexed: this.#entries.size - this.#residual.size, residual: this.#residual.size }
  }

  /**
   * Adds (or replaces) a subscription with its bound filter (undefined: every record). `matches`
   * may be passed when the caller has compiled the filter already (with the same accessors).
   */
  add(subscription: S, filter: BoundFilter | undefined, matches?: Predicate): void {
    this.remove(subscription)
    const plan = filter ? planFilter(filter) : undefined
    const entry: Entry<S> = {
      subscription,
      matches: matches ?? compileFilter(filter, { accessor: this.#accessor }),
      probes: plan?.probes,
      simple: plan?.exact === true && plan.probes.length === 1,
      exact: plan?.exact ?? false,
      intervals: [],
      mark: 0,
      before: 0,
      after: 0,
    }
    this.#entries.set(subscription, entry)
    if (!entry.simple) this.#notSimple++
    if (!plan) {
      this.#residual.add(entry)
      return
    }
    for (const probe of plan.probes) {
      const index = this.#path(probe.path)
      entry.intervals.push(
        entry.simple ? index.simple.add(probe, subscription) : index.general.add(probe, entry),
      )
    }
  }

  /** Removes a subscription; false when it was not there. */
  remove(subscription: S): boolean {
    const entry = this.#entries.get(subscription)
    if (!entry) return false
    this.#entries.delete(subscription)
    if (!entry.simple) this.#notSimple--
    if (!entry.probes) {
      this.#residual.delete(entry)
      return true
    }
    entry.probes.forEach((probe, i) => {
      const key = pathKey(probe.path)
      const index = this.#paths.get(key)!
      const interval = entry.intervals[i]
      if (entry.simple) index.simple.remove(probe, subscription, interval as RangeHandle<S>)
      else index.general.remove(probe, entry, interval as RangeHandle<Entry<S>>)
      if (index.simple.size === 0 && index.general.size === 0) {
        this.#paths.delete(key)
        // A fresh array: a change under way keeps looping over the one it started with.
        this.#pathList = [...this.#paths.values()]
      }
    })
    return true
  }

  /**
   * Keeps two values with a subscription filed by one numeric or date range (see `filedByOneRange`),
   * handed to `changes`' visitor when a change is classified by its tree; returns false (and keeps
   * nothing) for any other subscription.
   */
  setPayload(subscription: S, first: unknown, second: unknown): boolean {
    const entry = this.#entries.get(subscription)
    if (!entry?.simple) return false
    const probe = entry.probes![0]!
    return this.#paths
      .get(pathKey(probe.path))!
      .simple.setPayload(probe, entry.intervals[0] as RangeHandle<S>, first, second)
  }

  has(subscription: S): boolean {
    return this.#entries.has(subscription)
  }

  /**
   * The subscriptions a change from `before` to `after` (undefined: the record does not exist) can
   * concern: a superset of those whose result it changes, each once.
   */
  candidates(before: unknown, after: unknown): S[] {
    const out = new Set<S>()
    for (const entry of this.#collect(before, after)) out.add(entry.subscription)
    for (const index of this.#paths.values()) {
      const take = (s: S) => {
        out.add(s)
      }
      if (before !== undefined) index.simple.find(index.get(before), take)
      if (after !== undefined) index.simple.find(index.get(after), take)
    }
    return [...out]
  }

  /**
   * Calls `visit` for each subscription whose result the change touches: `enter` when the record
   * matches after but not before, `update` when it matches both, `leave` when it matched before
   * only. A record that does not exist (undefined) matches nothing. Pass the same value twice for
   * a message to a record (every match is an `update`). Returns how many were visited.
   *
   * `runs`, when given, takes whole runs of subscriptions filed by one numeric or date range that a
   * change gives the same transition (entries of subscription and payload, see RunVisitor): a
   * caller that delivers from the payload loops over them itself. The others still go to `visit`.
   */
  changes(before: unknown, after: unknown, visit: ChangeVisitor<S>, runs?: RunVisitor): number {
    let visited = 0
    if (this.#notSimple > 0) visited += this.#changesOfEntries(before, after, visit)
    const paths = this.#pathList
    for (let i = 0; i < paths.length; i++) {
      const index = paths[i]!
      if (index.simple.size === 0) continue
      const old = before === undefined ? undefined : index.get(before)
      const now = after === before ? old : after === undefined ? undefined : index.get(after)
      visited += index.simple.classify(before !== undefined, old, after !== undefined, now, visit, runs)
    }
    return visited
  }

  /** The part of `changes` for entries that are not simple (found through probes, or residual). */
  #changesOfEntries(before: unknown, after: unknown, visit: ChangeVisitor<S>): number {
    const found = this.#collect(before, after)
    const epoch = this.#epoch
    let visited = 0
    for (let i = 0; i < found.length; i++) {
      const entry = found[i]!
      let was: boolean
      let now: boolean
      if (entry.exact) {
        was = entry.before === epoch
        now = entry.after === epoch
      } else {
        was = before !== undefined && entry.matches(before)
        now = after !== undefined && (after === before ? was : entry.matches(after))
      }
      if (!was && !now) continue
      visited++
      visit(entry.subscription, was ? (now ? 'update' : 'leave') : 'enter', undefined, undefined)
    }
    return visited
  }

  #path(path: readonly string[]): PathIndex<S> {
    const key = pathKey(path)
    let index = this.#paths.get(key)
    if (!index) {
      index = { get: accessorFor(path, this.#accessor), simple: new ProbeTable(), general: new ProbeTable() }
      this.#paths.set(key, index)
      this.#pathList = [...this.#paths.values()]
    }
    return index
  }

  /** The residual entries and the general entries the change finds, each once, with `before` / `after` set. */
  #collect(before: unknown, after: unknown): Entry<S>[] {
    const epoch = ++this.#epoch
    // A fresh array each time: a visitor may call back into the index (nested changes).
    const found: Entry<S>[] = []
    for (const entry of this.#residual) {
      entry.mark = epoch
      found.push(entry)
    }
    const same = after === before
    const takeBefore = (entry: Entry<S>) => {
      entry.before = epoch
      if (same) entry.after = epoch
      if (entry.mark !== epoch) {
        entry.mark = epoch
        found.push(entry)
      }
    }
    const takeAfter = (entry: Entry<S>) => {
      entry.after = epoch
      if (entry.mark !== epoch) {
        entry.mark = epoch
        found.push(entry)
      }
    }
    for (const index of this.#paths.values()) {
      if (index.general.size === 0) continue
      if (before !== undefined) index.general.find(index.get(before), takeBefore)
      if (after !== undefined && !same) index.general.find(index.get(after), takeAfter)
    }
    return found
  }
}

function pathKey(path: readonly string[]): string {
  return path.length === 1 ? path[0]! : path.join('\u0000')
}
