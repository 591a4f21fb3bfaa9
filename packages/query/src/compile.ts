import type { AccessorFactory } from './accessor.js'
import type { Query } from './ast.js'
import { type BoundFilter, bindFilter, type TypeLookup } from './bind.js'
import { QueryError } from './errors.js'
import { type ParseOptions, parseQuery } from './parse.js'
import { compileFilter, type Predicate } from './predicate.js'
import { compileSelect } from './select.js'
import { type Comparator, compileSort } from './sort.js'

export interface CompileOptions extends ParseOptions {
  /** Schema types of attribute paths (conversion of values). */
  types?: TypeLookup
  /** Accessors for filter and sort paths (relationships). */
  accessor?: AccessorFactory
  /** Accessors for selected attributes (relationships), see `compileSelect`. */
  field?: AccessorFactory
}

/** Everything a list needs from one query string. */
export interface CompiledQuery {
  readonly query: Query
  /** The conditions with their values converted (for index planning); undefined: none. */
  readonly filter: BoundFilter | undefined
  readonly matches: Predicate
  /** Undefined without `sort`. */
  readonly compare: Comparator | undefined
  /** Undefined without `select`. */
  readonly project: ((record: unknown) => unknown) | undefined
}

/**
 * Parses (unless given a parsed query), binds and compiles a query in one call.
 *
 * @example
 * const q = compileQuery('age=gt=3&sort(-age)&select(name)', { types: (p) => (p[0] === 'age' ? 'Int' : undefined) })
 * records.filter(q.matches).sort(q.compare).map(q.project!)
 */
export function compileQuery(query: string | Query, options: CompileOptions = {}): CompiledQuery {
  const parsed = typeof query === 'string' ? parseQuery(query, options) : query
  const filter = parsed.filter ? bindFilter(parsed.filter, options.types) : undefined
  const accessor = options.accessor ? { accessor: options.accessor } : {}
  return {
    query: parsed,
    filter,
    matches: compileFilter(filter, accessor),
    compare: parsed.sort ? compileSort(parsed.sort, accessor) : undefined,
    project: parsed.select
      ? compileSelect(parsed.select, options.field ? { field: options.field } : {})
      : undefined,
  }
}

/**
 * Throws QUERY_UNSUPPORTED when a query has parts a subscription cannot honour: `sort()`,
 * `limit()`, `offset` and `after` describe a page of a list, not a live result.
 */
export function assertSubscribable(query: Query): void {
  const part =
    query.sort !== undefined
      ? 'sort'
      : query.limit !== undefined
        ? 'limit'
        : query.offset !== undefined
          ? 'offset'
          : query.after !== undefined
            ? 'after'
            : undefined
  if (part !== undefined) {
    const at = query.text.indexOf(part)
    throw new QueryError(
      'QUERY_UNSUPPORTED',
      `${part} applies to lists, not to subscriptions`,
      Math.max(0, at),
      part,
    )
  }
}
