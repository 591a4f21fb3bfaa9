import type { FilterNode, Query } from '../src/index.js'

/** A compact, readable form of a filter: `and(a eq "1", or(b lt "2", c sw "x"))`. */
export function shape(node: FilterNode | undefined): string {
  if (!node) return ''
  if (node.type !== 'condition') return `${node.type}(${node.children.map(shape).join(', ')})`
  const operator = `${node.strict ? 'strict-' : ''}${node.operator}`
  const prefix = node.prefix ? ` as ${node.prefix}` : ''
  const chained = node.chained ? ' (chained)' : ''
  return `${node.path.join('.')} ${operator} ${JSON.stringify(node.value)}${prefix}${chained}`
}

/** The non-filter parts of a query, for comparison. */
export function parts(query: Query): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const key of ['select', 'limit', 'offset', 'sort', 'after'] as const) {
    if (query[key] !== undefined) out[key] = query[key]
  }
  return out
}
