/** The parsed form of a query string (what `parseQuery` returns), before any schema is applied. */

/**
 * Comparison operators. `eq`/`ne` come from `=`, `==`, `!=`, `=ne=` (converting) and `===`, `!==`
 * (`strict`); `sw` also from `==value*`.
 */
export type Operator = 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge' | 'ct' | 'sw' | 'ew'

/** A `number:`, `boolean:`, `string:` or `date:` prefix on a value. */
export type ValuePrefix = 'number' | 'boolean' | 'string' | 'date'

/** One comparison, `brand.name==Acme`. */
export interface Condition {
  readonly type: 'condition'
  /** Attribute path, percent-decoded: `brand.name` is `['brand', 'name']` (`%2E` is a literal dot). */
  readonly path: readonly string[]
  readonly operator: Operator
  /** `===` / `!==`: the value is converted to the attribute's schema type only, never by its look. */
  readonly strict: boolean
  /** The value, percent-decoded, without its prefix (and without the `*` of `==prefix*`). */
  readonly value: string
  /** The `type:` prefix of the value, when it had one (not for strict operators, which take text as is). */
  readonly prefix?: ValuePrefix
  /** The second half of a chained range (`price=gt=100&lt=200`): it names no attribute of its own. */
  readonly chained?: boolean
  /** The condition as written (raw, still percent-encoded). */
  readonly text: string
  /** Offset of the condition in the query text. */
  readonly position: number
}

/** Conditions joined by `&` (`and`) or `|` (`or`); brackets make groups, which nest. */
export interface Junction {
  readonly type: 'and' | 'or'
  readonly children: readonly FilterNode[]
  /** Offset of the first child in the query text. */
  readonly position: number
}

export type FilterNode = Condition | Junction

/** One selected attribute; `brand{name,id}` selects from the related record(s) too. */
export interface SelectField {
  readonly name: string
  readonly select?: readonly SelectField[]
}

/**
 * What a list returns per record: `object` (`select(a,b)`, `select(a,)`, `select=a,b`), the bare
 * `value` of one attribute (`select(a)`), or an `array` of values (`select([a,b])`).
 */
export interface Selection {
  readonly kind: 'object' | 'value' | 'array'
  readonly fields: readonly SelectField[]
}

/** `sort(+a,-b)` / `sort=-b,a`: null and missing values come last in both directions. */
export interface SortKey {
  readonly path: readonly string[]
  readonly descending: boolean
}

/** A parsed query string. Functions and parameters are hoisted out of the filter. */
export interface Query {
  /** The conditions; undefined when there are none (every record). */
  readonly filter?: FilterNode
  readonly select?: Selection
  /** From `limit(n)`, `limit(start,end)` (`end - start`) or `limit=n`. */
  readonly limit?: number
  /** From `limit(start,end)` (`start`) or `offset=n`. */
  readonly offset?: number
  readonly sort?: readonly SortKey[]
  /** Keyset cursor `after=…`, opaque to this package. */
  readonly after?: string
  /** The query text that was parsed (raw). */
  readonly text: string
}
