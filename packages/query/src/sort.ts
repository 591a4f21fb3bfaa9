import { type AccessorFactory, accessorFor } from './accessor.js'
import type { SortKey } from './ast.js'
import { compareValues } from './values.js'

export type Comparator = (a: unknown, b: unknown) => number

/**
 * A comparator of records for `sort()`: key by key, ascending or descending; null and missing
 * values come last in both directions, so sorting never drops or hides a record. Equal records
 * compare 0 (callers break ties, e.g. by id, for a stable keyset order).
 *
 * @example
 * records.sort(compileSort(parseQuery('sort(-age,name)').sort!))
 */
export function compileSort(
  keys: readonly SortKey[],
  options: { accessor?: AccessorFactory } = {},
): Comparator {
  const steps = keys.map((key) => ({
    get: accessorFor(key.path, options.accessor),
    sign: key.descending ? -1 : 1,
  }))
  return (a, b) => {
    for (let i = 0; i < steps.length; i++) {
      const { get, sign } = steps[i]!
      const c = compareSortValues(get(a), get(b), sign)
      if (c !== 0) return c
    }
    return 0
  }
}

/** One sort key's order: `sign` 1 ascending, -1 descending; null and missing last either way. */
export function compareSortValues(x: unknown, y: unknown, sign: number): number {
  const xn = x === null || x === undefined
  const yn = y === null || y === undefined
  if (xn || yn) return xn === yn ? 0 : xn ? 1 : -1
  return sign * compareValues(x, y)
}
