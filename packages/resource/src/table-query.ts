import type { BoundFilter, Selection } from '@proj/query'
import type { TableQuery } from './list-page.js'
import type { ListQuery } from './types.js'

/**
 * A list request as one table query: a parsed `?query` wins; the older `where`/`sort`/`select`
 * parameters fill in what it leaves out.
 */
export function tableQuery(query: ListQuery, filter: BoundFilter | undefined): TableQuery {
  const parsed = query.query
  const legacySort = query.sort?.map((s) => ({ path: [s.attribute], descending: s.descending === true }))
  const legacySelect: Selection | undefined = query.select && {
    kind: 'object',
    fields: query.select.map((name) => ({ name })),
  }
  return {
    filter,
    where: Object.entries(query.where ?? {}),
    limit: parsed?.limit ?? query.limit,
    offset: parsed?.offset ?? query.offset ?? 0,
    after: parsed?.after ?? query.after,
    sort: parsed?.sort ?? legacySort ?? [],
    select: parsed?.select ?? legacySelect,
  }
}
