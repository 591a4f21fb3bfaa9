/**
 * Choosing how a list query reads a table: by primary keys, by ranges of secondary indexes (their
 * union for an `or`, the most selective conjunct of an `and`, estimated by counting a bounded run of
 * keys), or by a scan. Every record found is still checked against the whole filter, so a plan only
 * has to find a superset of the matches.
 */
import type { BoundCondition, BoundFilter, Operand } from '@proj/query'
import { compareText, compileFilter, prefixEnd } from '@proj/query'
import type { Key, RecordEntry } from '@proj/storage'
import { isCut, KIND_BOOLEAN, KIND_NULL, KIND_NUMBER, KIND_TEXT, textHead } from './index-keys.js'
import {
  idRanges,
  type Relationships,
  relatedTable,
  type TableCatalog,
  type TableHandle,
} from './relationships.js'
import type { IndexRange, ReadCounter, SecondaryIndex } from './table-indexes.js'
import { coerceId } from './validate.js'

/** Where candidates come from: record ids, or ranges of an index. */
type Source =
  | { readonly ids: readonly Key[] }
  | { readonly index: SecondaryIndex; readonly range: IndexRange }

/** A plan: the union of its sources. */
export interface Access {
  readonly sources: readonly Source[]
}

export interface PlanContext {
  readonly table: TableHandle
  readonly catalog: TableCatalog
  readonly relationships: Relationships
  readonly counter: ReadCounter
}

/** How many keys of a range are counted at most to compare plans. */
const ESTIMATE_CAP = 1000

/** The plan of a filter, or undefined when it needs a scan. */
export function planFilter(filter: BoundFilter, ctx: PlanContext): Access | undefined {
  if (filter.type === 'condition') return planCondition(filter, ctx)
  const plans = filter.children.map((child) => planFilter(child, ctx))
  if (filter.type === 'or') {
    const sources: Source[] = []
    for (const plan of plans) {
      if (!plan) return undefined
      sources.push(...plan.sources)
    }
    return { sources }
  }
  // A merged range is never larger than the conditions it merges: those drop out.
  const { merged, consumed } = mergedRanges(filter.children, ctx)
  const candidates = [...merged, ...plans.filter((plan, i) => plan && !consumed.has(i))] as Access[]
  if (candidates.length <= 1) return candidates[0]
  // The most selective conjunct: compare estimates, counting no further than the best so far.
  let best: Access | undefined
  let bestCount = Number.POSITIVE_INFINITY
  for (const plan of candidates) {
    const count = estimate(plan, Math.min(bestCount, ESTIMATE_CAP + 1), ctx.counter)
    if (count < bestCount) [best, bestCount] = [plan, count]
  }
  return best
}

function estimate(plan: Access, cap: number, counter: ReadCounter): number {
  let n = 0
  for (const source of plan.sources) {
    n += 'ids' in source ? source.ids.length : source.index.count(source.range, cap - n, counter)
    if (n >= cap) return n
  }
  return n
}

function planCondition(condition: BoundCondition, ctx: PlanContext): Access | undefined {
  const { table } = ctx
  const [name, ...rest] = condition.path
  if (rest.length > 0) return planJoin(condition, ctx)
  const { operator, operand } = condition
  if (name === table.primaryKey && operator === 'eq' && !operand.null) {
    const ids: Key[] = []
    for (const raw of [operand.string, operand.number]) {
      if (raw === undefined) continue
      try {
        ids.push(coerceId(table.definition.primaryKey, String(raw), table.definition.name))
      } catch {
        // not an id of this table: nothing to find
      }
    }
    return { sources: [{ ids }] }
  }
  const index = table.indexes.get(name!)
  if (!index) return undefined
  const ranges = conditionRanges(condition, index.isDate)
  return ranges && { sources: ranges.map((range) => ({ index, range })) }
}

/** The index ranges that hold every value a condition can match; undefined when none do. */
function conditionRanges(condition: BoundCondition, isDate: boolean): IndexRange[] | undefined {
  const { operator, operand } = condition
  switch (operator) {
    case 'eq': {
      const ranges: IndexRange[] = []
      const point = (kind: IndexRange['kind'], value: number | string) =>
        ranges.push({ kind, low: value, high: value })
      if (operand.null) point(KIND_NULL, 0)
      if (operand.boolean !== undefined) point(KIND_BOOLEAN, operand.boolean ? 1 : 0)
      if (operand.number !== undefined) point(KIND_NUMBER, operand.number)
      if (operand.string !== undefined) point(KIND_TEXT, textHead(operand.string))
      if (operand.date !== undefined) {
        if (!isDate) return undefined // dates of an untyped attribute may be text: not in one run
        point(KIND_NUMBER, operand.date)
      }
      return ranges
    }
    case 'lt':
    case 'le':
    case 'gt':
    case 'ge': {
      const bounds = rangeBounds(operand, isDate)
      if (!bounds || bounds.length === 0) return undefined
      // A bound cut to its index head must include the head: longer texts share it.
      return bounds.map(([kind, bound, cut]): IndexRange => {
        const open = !cut && (operator === 'lt' || operator === 'gt')
        return operator === 'lt' || operator === 'le'
          ? { kind, high: bound, highOpen: open }
          : { kind, low: bound, lowOpen: open }
      })
    }
    case 'sw': {
      const head = textHead(operand.string ?? '')
      const end = prefixEnd(head)
      return [
        end === undefined
          ? { kind: KIND_TEXT, low: head }
          : { kind: KIND_TEXT, low: head, high: end, highOpen: true },
      ]
    }
    default:
      return undefined
  }
}

/** The (kind, bound, cut) of each alternative of a range operand; undefined when one has no index order. */
function rangeBounds(
  operand: Operand,
  isDate: boolean,
): [IndexRange['kind'], number | string, boolean][] | undefined {
  const out: [IndexRange['kind'], number | string, boolean][] = []
  if (operand.boolean !== undefined) out.push([KIND_BOOLEAN, operand.boolean ? 1 : 0, false])
  if (operand.number !== undefined) out.push([KIND_NUMBER, operand.number, false])
  if (operand.string !== undefined) out.push([KIND_TEXT, textHead(operand.string), isCut(operand.string)])
  if (operand.date !== undefined) {
    if (!isDate) return undefined
    out.push([KIND_NUMBER, operand.date, false])
  }
  return out
}

/**
 * Range conditions of an `and` on one indexed attribute that holds single values (not a list, not
 * untyped): intersected into one range. (On a list, each condition may hold for another element.)
 */
function mergedRanges(
  children: readonly BoundFilter[],
  ctx: PlanContext,
): { merged: Access[]; consumed: Set<number> } {
  const groups = new Map<string, { index: SecondaryIndex; range: IndexRange; members: number[] }>()
  for (const [position, child] of children.entries()) {
    if (child.type !== 'condition' || child.path.length !== 1) continue
    const op = child.operator
    if (op !== 'lt' && op !== 'le' && op !== 'gt' && op !== 'ge') continue
    const index = ctx.table.indexes.get(child.path[0]!)
    const attribute = ctx.table.definition.attributes.find((a) => a.name === child.path[0])
    if (!index || attribute?.type.kind !== 'scalar' || attribute.type.name === 'Any') continue
    const ranges = conditionRanges(child, index.isDate)
    if (ranges?.length !== 1) continue
    const range = ranges[0]!
    const key = `${child.path[0]}\u0000${range.kind}`
    const group = groups.get(key)
    if (group)
      groups.set(key, { index, range: intersect(group.range, range), members: [...group.members, position] })
    else groups.set(key, { index, range, members: [position] })
  }
  const merged: Access[] = []
  const consumed = new Set<number>()
  for (const { index, range, members } of groups.values()) {
    if (members.length < 2) continue
    merged.push({ sources: [{ index, range }] })
    for (const m of members) consumed.add(m)
  }
  return { merged, consumed }
}

function order(a: number | string, b: number | string): number {
  return typeof a === 'number' && typeof b === 'number' ? a - b : compareText(String(a), String(b))
}

function intersect(a: IndexRange, b: IndexRange): IndexRange {
  let { low, high, lowOpen, highOpen } = a
  if (b.low !== undefined) {
    const c = low === undefined ? 1 : order(b.low, low)
    if (c > 0) [low, lowOpen] = [b.low, b.lowOpen]
    else if (c === 0) lowOpen = lowOpen || b.lowOpen
  }
  if (b.high !== undefined) {
    const c = high === undefined ? -1 : order(b.high, high)
    if (c < 0) [high, highOpen] = [b.high, b.highOpen]
    else if (c === 0) highOpen = highOpen || b.highOpen
  }
  const out: { -readonly [K in keyof IndexRange]: IndexRange[K] } = { kind: a.kind }
  if (low !== undefined) [out.low, out.lowOpen] = [low, lowOpen ?? false]
  if (high !== undefined) [out.high, out.highOpen] = [high, highOpen ?? false]
  return out
}

/**
 * A condition through a relationship (`brand.name=Acme`): the related records that match it are
 * found by the related table's own plan, then this table's records that point to them (by the index
 * of the `from` attribute) or that they point to (the ids in their `to` attribute). `==null` is left
 * to a scan: it also matches records without a related record.
 */
function planJoin(condition: BoundCondition, ctx: PlanContext): Access | undefined {
  const { table, catalog, relationships } = ctx
  if (condition.operand.null) return undefined
  const attribute = table.definition.attributes.find((a) => a.name === condition.path[0])
  const related = attribute && relatedTable(attribute, catalog)
  const relationship = attribute?.relationship
  if (!related || !relationship) return undefined
  relationships.check(related)
  const inner: BoundCondition = { ...condition, path: condition.path.slice(1) }
  const relatedCtx: PlanContext = { ...ctx, table: related }
  const access = planFilter(inner, relatedCtx)
  if (!access) return undefined
  const matches = compileFilter(inner, { accessor: relationships.accessor(related) })
  const found: RecordEntry[] = []
  for (const entry of fetch(access, related, ctx.counter)) {
    if (!related.isExpired(entry.version) && matches(related.storedValue(entry))) found.push(entry)
  }
  if (relationship.from !== undefined) {
    const index = table.indexes.get(relationship.from)
    if (!index) return undefined
    const sources: Source[] = []
    for (const entry of found) {
      if (typeof entry.id !== 'string' && typeof entry.id !== 'number') continue
      for (const range of idRanges(entry.id)) sources.push({ index, range })
    }
    return { sources }
  }
  const ids: Key[] = []
  for (const entry of found) {
    const value = related.storedValue(entry) as Record<string, unknown> | null
    const pointer =
      value !== null && typeof value === 'object' && Object.hasOwn(value, relationship.to!)
        ? value[relationship.to!]
        : undefined
    for (const id of Array.isArray(pointer) ? pointer : [pointer]) {
      if (typeof id !== 'string' && typeof id !== 'number') continue
      try {
        ids.push(coerceId(table.definition.primaryKey, String(id), table.definition.name))
      } catch {
        // points at no possible record of this table
      }
    }
  }
  return { sources: [{ ids }] }
}

function keyText(id: Key): string {
  return typeof id === 'string' ? `s${id}` : JSON.stringify(id)
}

/** The ids of a plan, each once, in no particular order. */
export function planIds(access: Access, counter: ReadCounter): Key[] {
  const ids = new Map<string, Key>()
  for (const source of access.sources) {
    if ('ids' in source) for (const id of source.ids) ids.set(keyText(id), id)
    else for (const id of source.index.scan(source.range, counter)) ids.set(keyText(id), id)
  }
  return [...ids.values()]
}

/** The records of a plan's ids (the ones that exist). */
function* fetch(
  access: Access,
  table: TableHandle,
  counter: ReadCounter,
): Generator<RecordEntry, void, undefined> {
  for (const id of planIds(access, counter)) {
    counter.records++
    const entry = table.table.getEntry(id)
    if (entry) yield entry
  }
}
