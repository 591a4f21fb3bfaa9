/**
 * Running a list query on a table: candidates from the plan (or a scan in key order), every one
 * checked against the whole filter, then keyset or sorted paging, and the projection of `select`.
 */
import {
  type Accessor,
  type BoundCondition,
  type BoundFilter,
  compareSortValues,
  compileFilter,
  compileSelect,
  compileSort,
  pathAccessor,
  type Selection,
  type SortKey,
} from '@proj/query'
import type { Key, RecordEntry } from '@proj/storage'
import { ResourceError } from './errors.js'
import { compareKeys, cursorValue, decodeCursor, encodeCursor, keysEqual } from './list-cursor.js'
import { ownValue } from './own-keys.js'
import { type Access, type PlanContext, planFilter, planIds } from './query-plan.js'
import type { ListPage, RecordResult } from './types.js'

/** A list query with its conditions bound to the table's types. */
export interface TableQuery {
  readonly filter: BoundFilter | undefined
  /** `ListQuery.where`: `String(value) === text` equality, as it always was. */
  readonly where: readonly (readonly [string, string])[]
  readonly limit: number | undefined
  readonly offset: number
  readonly after: string | undefined
  readonly sort: readonly SortKey[]
  readonly select: Selection | undefined
}

const INTEGER_TEXT = /^-?(0|[1-9]\d*)(\.\d+)?$/
const WHERE_TYPES: ReadonlySet<string> = new Set(['ID', 'String', 'Int', 'Long', 'Float', 'Boolean'])

/**
 * The conditions an index can serve for `where` entries: `String(value) === text` holds only for the
 * text itself, its number (when the text is a number's own spelling) and its boolean, on attributes
 * declared with a single scalar type (a list's or a Date's text is not in the index).
 */
function whereConditions(query: TableQuery, ctx: PlanContext): BoundCondition[] {
  const out: BoundCondition[] = []
  for (const [name, text] of query.where) {
    const attribute = ctx.table.definition.attributes.find((a) => a.name === name)
    const type = attribute?.type
    const isId = name === ctx.table.primaryKey
    if (!isId && type?.kind !== 'enum' && (type?.kind !== 'scalar' || !WHERE_TYPES.has(type.name))) continue
    const operand: { string: string; number?: number; boolean?: boolean } = { string: text }
    if (INTEGER_TEXT.test(text) && String(Number(text)) === text) operand.number = Number(text)
    if (text === 'true' || text === 'false') operand.boolean = text === 'true'
    const source = {
      type: 'condition',
      path: [name],
      operator: 'eq',
      strict: true,
      value: text,
      text,
      position: 0,
    } as const
    out.push({ type: 'condition', path: [name], operator: 'eq', operand, source })
  }
  return out
}

function whereMatches(where: TableQuery['where'], value: unknown): boolean {
  for (const [name, text] of where) {
    const actual = ownValue(value, name)
    if (actual === undefined || actual === null || String(actual) !== text) return false
  }
  return true
}

/** The first condition of a filter, to name in an error. */
function firstCondition(filter: BoundFilter | undefined): BoundCondition | undefined {
  if (!filter) return undefined
  return filter.type === 'condition' ? filter : firstCondition(filter.children[0])
}

export function runListQuery(query: TableQuery, ctx: PlanContext): ListPage {
  const { table, relationships } = ctx
  const accessor = relationships.accessor(table)
  const filterMatches = compileFilter(query.filter, { accessor })
  const where = query.where
  const matches = (value: unknown) =>
    filterMatches(value) && (where.length === 0 || whereMatches(where, value))

  const conditions: BoundFilter[] = [...whereConditions(query, ctx)]
  if (query.filter) conditions.push(query.filter)
  const filtered = query.filter !== undefined || where.length > 0
  let access: Access | undefined
  if (conditions.length > 0) {
    access = planFilter(conditions.length === 1 ? conditions[0]! : { type: 'and', children: conditions }, ctx)
  }
  if (!access && filtered && !table.definition.scan) {
    const first = firstCondition(query.filter)?.source
    const named = first
      ? `: no condition is on an @indexed attribute ('${first.text}' at position ${first.position})`
      : ''
    throw new ResourceError(
      'INVALID',
      `${table.definition.name} does not allow full scans (@table(scan: false))${named}`,
      {
        details: first ? { position: first.position, condition: first.text } : {},
      },
    )
  }

  const candidates = (after: Key | undefined): Iterable<RecordEntry> => entries(access, after, ctx)
  const keep = (entry: RecordEntry): RecordResult | undefined => {
    if (table.isExpired(entry.version)) return undefined
    const value = table.storedValue(entry)
    return matches(value) ? { id: entry.id, value, version: entry.version } : undefined
  }
  const cursor = query.after === undefined ? undefined : decodeCursor(query.after)
  const { sort, offset, limit } = query
  let items: RecordResult[] = []
  let more = false
  let sortValues: Accessor[] = []
  if (sort.length === 0) {
    // Key order: stop as soon as the page (and one more, to know there is more) is read.
    let skip = offset
    const want = limit === undefined ? Number.POSITIVE_INFINITY : limit + 1
    if (want > 0) {
      for (const entry of candidates(cursor?.id)) {
        const item = keep(entry)
        if (!item) continue
        if (skip > 0) {
          skip--
          continue
        }
        items.push(item)
        if (items.length >= want) break
      }
    }
    if (limit !== undefined && items.length > limit) {
      more = true
      items.length = limit
    }
  } else {
    sortValues = sort.map((key) => accessor(key.path) ?? pathAccessor(key.path))
    const byValues = compileSort(sort, { accessor })
    const order = (a: RecordResult, b: RecordResult) => byValues(a.value, b.value) || compareKeys(a.id, b.id)
    const all: RecordResult[] = []
    for (const entry of candidates(undefined)) {
      const item = keep(entry)
      if (item) all.push(item)
    }
    all.sort(order)
    let from = 0
    if (cursor) {
      const values = cursor.values ?? []
      const afterCursor = (item: RecordResult): boolean => {
        for (let i = 0; i < sort.length; i++) {
          const c = compareSortValues(sortValues[i]!(item.value), values[i], sort[i]!.descending ? -1 : 1)
          if (c !== 0) return c > 0
        }
        return compareKeys(item.id, cursor.id) > 0
      }
      while (from < all.length && !afterCursor(all[from]!)) from++
    }
    from += offset
    const to = limit === undefined ? all.length : Math.min(all.length, from + limit)
    items = all.slice(from, to)
    more = to < all.length
  }
  let next: string | undefined
  const last = items[items.length - 1]
  if (more && last) {
    next = encodeCursor(
      sort.length === 0
        ? { id: last.id }
        : { id: last.id, values: sortValues.map((read) => cursorValue(read(last.value))) },
    )
  }
  if (query.select) {
    const project = compileSelect(query.select, { field: relationships.field(table) })
    items = items.map((r) => ({ ...r, value: project(r.value) }))
  }
  return next === undefined ? { items } : { items, next }
}

/**
 * Candidates in primary-key order, after `after`: a scan; one index value, streamed (its ids are in
 * key order already); or the ids of the plan, collected and sorted.
 */
function* entries(
  access: Access | undefined,
  after: Key | undefined,
  ctx: PlanContext,
): Generator<RecordEntry, void, undefined> {
  const { table, counter } = ctx
  if (!access) {
    for (const entry of table.table.entries(after === undefined ? undefined : { start: after })) {
      counter.records++
      if (after !== undefined && keysEqual(entry.id, after)) continue
      yield entry
    }
    return
  }
  const only = access.sources.length === 1 ? access.sources[0]! : undefined
  const range = only && 'index' in only ? only.range : undefined
  let ids: Iterable<Key>
  if (
    only &&
    'index' in only &&
    range?.low !== undefined &&
    range.low === range.high &&
    !range.lowOpen &&
    !range.highOpen
  ) {
    ids = only.index.scan(range, counter, after)
  } else {
    const sorted = planIds(access, counter).sort(compareKeys)
    ids = after === undefined ? sorted : sorted.filter((id) => compareKeys(id, after) > 0)
  }
  for (const id of ids) {
    counter.records++
    const entry = table.table.getEntry(id)
    if (entry) yield entry
  }
}
