/**
 * Which index entries a filter needs so that every record it matches is found through one of them:
 * an equality (path, value) or a range (path, domain, bounds). An `and` needs the entries of one
 * conjunct (the cheapest); an `or` needs those of every disjunct. Undefined when no such set exists
 * (a filter with only `!=`, `=ct=`, `=ew=`: it has to be checked against every change).
 *
 * A plan is `exact` when being found through its entries is the same as matching the filter (a
 * lone equality, a range, an `or` of those): the index then needs no predicate call at all.
 */
import type { BoundCondition, BoundFilter } from './bind.js'
import { compareText, prefixEnd } from './values.js'

export type EqualKey = string | number | boolean | null

/** Ordered domains: numbers, strings by code point, dates as epoch milliseconds. */
export type Domain = 'number' | 'string' | 'date'

export interface RangeProbe {
  readonly kind: 'range'
  readonly path: readonly string[]
  readonly domain: Domain
  /** Undefined: unbounded. */
  readonly low: number | string | undefined
  readonly high: number | string | undefined
  /** `gt` (exclusive) rather than `ge`. */
  readonly lowOpen: boolean
  /** `lt` (exclusive) rather than `le`. */
  readonly highOpen: boolean
  /** The bounds come from two conditions of an `and`: on an array, two elements may meet them. */
  readonly spanning: boolean
}

export type Probe =
  | { readonly kind: 'equal'; readonly path: readonly string[]; readonly key: EqualKey }
  | RangeProbe

export interface Plan {
  readonly probes: Probe[]
  readonly exact: boolean
  readonly cost: number
}

const EQUAL_COST = 1
const BOUNDED_COST = 4
const HALF_BOUNDED_COST = 16
const UNBOUNDED_COST = 64

/** The probes of a filter, or undefined when it must be checked against every change. */
export function planFilter(filter: BoundFilter): Plan | undefined {
  if (filter.type === 'condition') return planCondition(filter)
  const plans = filter.children.map(planFilter)
  if (filter.type === 'or') {
    const probes: Probe[] = []
    let cost = 0
    let exact = true
    for (const p of plans) {
      if (!p) return undefined
      probes.push(...p.probes)
      cost += p.cost
      exact &&= p.exact
    }
    return { probes, cost, exact }
  }
  let best: Plan | undefined
  for (const p of plans) {
    // One conjunct out of several: the others still need the predicate.
    if (p && (!best || p.cost < best.cost)) best = { ...p, exact: p.exact && plans.length === 1 }
  }
  const merged = mergedRange(filter.children)
  if (merged && (!best || merged.cost <= best.cost)) best = merged
  return best
}

function rangeCost(low: unknown, high: unknown): number {
  if (low === undefined && high === undefined) return UNBOUNDED_COST
  return low === undefined || high === undefined ? HALF_BOUNDED_COST : BOUNDED_COST
}

function rangePlan(probe: RangeProbe, exact: boolean): Plan {
  return { probes: [probe], cost: rangeCost(probe.low, probe.high), exact }
}

function planCondition(condition: BoundCondition): Plan | undefined {
  const { path, operand } = condition
  switch (condition.operator) {
    case 'eq': {
      const probes: Probe[] = []
      if (operand.null) probes.push({ kind: 'equal', path, key: null })
      if (operand.string !== undefined) probes.push({ kind: 'equal', path, key: operand.string })
      if (operand.number !== undefined) probes.push({ kind: 'equal', path, key: operand.number })
      if (operand.boolean !== undefined) probes.push({ kind: 'equal', path, key: operand.boolean })
      if (operand.date !== undefined) {
        const d = operand.date
        const spanning = false
        probes.push({
          kind: 'range',
          path,
          domain: 'date',
          low: d,
          high: d,
          lowOpen: false,
          highOpen: false,
          spanning,
        })
      }
      return { probes, cost: EQUAL_COST * probes.length, exact: true }
    }
    case 'lt':
    case 'le':
    case 'gt':
    case 'ge': {
      const probes: RangeProbe[] = []
      for (const [domain, bound] of alternatives(condition)) probes.push(halfRange(condition, domain, bound))
      if (probes.length === 0) return undefined // booleans: not indexed
      return { probes, cost: probes.reduce((sum, p) => sum + rangeCost(p.low, p.high), 0), exact: true }
    }
    case 'sw': {
      const prefix = operand.string ?? ''
      const end = prefixEnd(prefix)
      return rangePlan(
        {
          kind: 'range',
          path,
          domain: 'string',
          low: prefix === '' ? undefined : prefix,
          high: end,
          lowOpen: false,
          highOpen: end !== undefined,
          spanning: false,
        },
        true,
      )
    }
    default:
      return undefined
  }
}

/** The ordered alternatives of a range condition's operand. */
function alternatives(condition: BoundCondition): [Domain, number | string][] {
  const { operand } = condition
  const out: [Domain, number | string][] = []
  if (operand.number !== undefined) out.push(['number', operand.number])
  if (operand.string !== undefined) out.push(['string', operand.string])
  if (operand.date !== undefined) out.push(['date', operand.date])
  return out
}

function halfRange(condition: BoundCondition, domain: Domain, bound: number | string): RangeProbe {
  const { path, operator } = condition
  const upper = operator === 'lt' || operator === 'le'
  return upper
    ? {
        kind: 'range',
        path,
        domain,
        low: undefined,
        high: bound,
        lowOpen: false,
        highOpen: operator === 'lt',
        spanning: false,
      }
    : {
        kind: 'range',
        path,
        domain,
        low: bound,
        high: undefined,
        lowOpen: operator === 'gt',
        highOpen: false,
        spanning: false,
      }
}

/**
 * The range conditions of an `and` on one path and domain, intersected: `price=gt=100&lt=200` is one
 * bounded interval, cheaper than either half. Exact when the `and` holds nothing else.
 */
function mergedRange(children: readonly BoundFilter[]): Plan | undefined {
  const groups = new Map<string, { probe: RangeProbe; count: number }>()
  for (const child of children) {
    if (child.type !== 'condition') continue
    const op = child.operator
    if (op !== 'lt' && op !== 'le' && op !== 'gt' && op !== 'ge') continue
    const options = alternatives(child)
    if (options.length !== 1) continue
    const [domain, bound] = options[0]!
    const half = halfRange(child, domain, bound)
    const key = `${domain}\u0000${child.path.join('\u0000')}`
    const group = groups.get(key)
    groups.set(
      key,
      group ? { probe: intersect(group.probe, half), count: group.count + 1 } : { probe: half, count: 1 },
    )
  }
  let best: Plan | undefined
  for (const { probe, count } of groups.values()) {
    if (count < 2) continue
    // An empty intersection (`a=gt=5&lt=0`) still matches an array holding 6 and -1, and an
    // inverted interval has no place in an interval tree: not a plan.
    if (probe.low !== undefined && probe.high !== undefined && order(probe.low, probe.high) > 0) continue
    const plan = rangePlan(probe, count === children.length)
    if (!best || plan.cost < best.cost) best = plan
  }
  return best
}

function intersect(a: RangeProbe, b: RangeProbe): RangeProbe {
  let { low, high, lowOpen, highOpen } = a
  if (b.low !== undefined) {
    const c = low === undefined ? 1 : order(b.low, low)
    if (c > 0) [low, lowOpen] = [b.low, b.lowOpen]
    else if (c === 0) lowOpen ||= b.lowOpen
  }
  if (b.high !== undefined) {
    const c = high === undefined ? -1 : order(b.high, high)
    if (c < 0) [high, highOpen] = [b.high, b.highOpen]
    else if (c === 0) highOpen ||= b.highOpen
  }
  return { ...a, low, high, lowOpen, highOpen, spanning: true }
}

function order(a: number | string, b: number | string): number {
  return typeof a === 'string' && typeof b === 'string' ? compareText(a, b) : Number(a) - Number(b)
}
