/** Stable codes of {@link QueryError}; transports map them to HTTP 400 / MQTT reason 0x8F. */
export type QueryErrorCode =
  /** Something that is not part of the grammar: a missing operator, an unclosed bracket, a stray `)`. */
  | 'QUERY_SYNTAX'
  /** `&` and `|` mixed at one level without brackets (`a=1|b=2&c=3`). */
  | 'QUERY_MIXED_OPERATORS'
  /** A FIQL operator this language does not have (`=foo=`). */
  | 'QUERY_UNKNOWN_OPERATOR'
  /** A chained condition other than a lower bound followed by an upper bound (`price=gt=1&lt=9`). */
  | 'QUERY_INVALID_CHAIN'
  /** A value that does not convert to the attribute's type, or a bad `limit`/`offset` number. */
  | 'QUERY_INVALID_VALUE'
  /** An operator that does not apply to the attribute's type (`=sw=` on an `Int`). */
  | 'QUERY_OPERATOR_TYPE'
  /** A function other than `select()`, `limit()`, `sort()`, or malformed arguments of one. */
  | 'QUERY_UNKNOWN_FUNCTION'
  /** `select`, `limit`, `sort`, `offset` or `after` given twice. */
  | 'QUERY_DUPLICATE'
  /** A query function or parameter inside a group or a `|` union. */
  | 'QUERY_MISPLACED'
  /** Malformed percent-encoding (`%zz`, or bytes that are not UTF-8). */
  | 'QUERY_INVALID_ENCODING'
  /** A bare `+` or `#` in the query part of an MQTT topic filter (write `%2B`, `%23`). */
  | 'QUERY_TOPIC_WILDCARD'
  /** Something valid in a list but not where it is used (`sort()` on a subscription). */
  | 'QUERY_UNSUPPORTED'

/**
 * A query that cannot be parsed or evaluated. `position` is the offset in the query text (after
 * the `?`, as received: still percent-encoded) and `condition` the text of the term concerned;
 * the message names both.
 *
 * @example
 * try { parseQuery('a=1|b=2&c=3') } catch (error) {
 *   if (error instanceof QueryError) error.position // 7: the `&` that mixes with `|`
 * }
 */
export class QueryError extends Error {
  override readonly name = 'QueryError'
  readonly code: QueryErrorCode
  /** Offset in the query text where the problem is. */
  readonly position: number
  /** The condition, function or parameter text concerned (raw, as written). */
  readonly condition: string
  /** `{ position, condition }`, for error bodies (HTTP's `details`). */
  readonly details: { readonly position: number; readonly condition: string }

  constructor(
    code: QueryErrorCode,
    detail: string,
    position: number,
    condition: string,
    options?: ErrorOptions,
  ) {
    super(`${detail} at position ${position}${condition === '' ? '' : ` in '${condition}'`}`, options)
    this.code = code
    this.position = position
    this.condition = condition
    this.details = { position, condition }
  }
}
