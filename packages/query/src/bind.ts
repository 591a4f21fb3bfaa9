/**
 * Applying a schema to parsed conditions: each value becomes an {@link Operand} holding what it
 * compares with, converted by the attribute's type (or, on untyped attributes, by its look or its
 * `type:` prefix). Binding happens once per query; evaluation then never converts text.
 */
import type { Condition, FilterNode, Operator } from './ast.js'
import { QueryError } from './errors.js'

/**
 * A schema scalar type name (`String`, `ID`, `Int`, `Long`, `Float`, `Boolean`, `Date`); anything
 * else (`Any`, `Bytes`, an object type) or undefined means untyped. Enums are `String`.
 */
export type AttributeType = 'String' | 'ID' | 'Int' | 'Long' | 'Float' | 'Boolean' | 'Date' | (string & {})

/** The declared type of the attribute at `path` (for a list type, of its elements), if any. */
export type TypeLookup = (path: readonly string[]) => AttributeType | undefined

/**
 * What a condition compares a record's value with, one alternative per kind of value it can meet:
 * a string value is compared with `string`, a number with `number`, a boolean with `boolean`; a
 * `date` (epoch milliseconds) is compared with Date objects, and with numbers and date strings when
 * the operand has no `number` / `string` alternative. `null: true` is `==null` (null or missing).
 * Values of a kind with no alternative never compare equal, and never compare less or greater.
 */
export interface Operand {
  readonly null?: true
  readonly string?: string
  readonly number?: number
  readonly boolean?: boolean
  readonly date?: number
}

export interface BoundCondition {
  readonly type: 'condition'
  readonly path: readonly string[]
  readonly operator: Operator
  readonly operand: Operand
  /** The parsed condition (text and position for messages). */
  readonly source: Condition
}

export interface BoundJunction {
  readonly type: 'and' | 'or'
  readonly children: readonly BoundFilter[]
}

export type BoundFilter = BoundCondition | BoundJunction

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/
const INTEGER = /^-?\d+$/
const TEXT_OPERATORS: ReadonlySet<Operator> = new Set(['ct', 'sw', 'ew'])
const RANGE_OPERATORS: ReadonlySet<Operator> = new Set(['lt', 'le', 'gt', 'ge'])

/**
 * Converts every condition's value for evaluation and indexing. `types` gives the schema type of
 * an attribute path; schema types always win over prefixes and looks. Throws QueryError
 * (`QUERY_INVALID_VALUE`, `QUERY_OPERATOR_TYPE`) naming the condition and its position.
 *
 * @example
 * const filter = bindFilter(parseQuery('age=gt=3&name==string:007').filter!, (p) => (p[0] === 'age' ? 'Int' : undefined))
 */
export function bindFilter(node: FilterNode, types?: TypeLookup): BoundFilter {
  if (node.type === 'condition') return bindCondition(node, types?.(node.path))
  return { type: node.type, children: node.children.map((child) => bindFilter(child, types)) }
}

function bindCondition(condition: Condition, type: AttributeType | undefined): BoundCondition {
  return {
    type: 'condition',
    path: condition.path,
    operator: condition.operator,
    operand: operandOf(condition, scalarType(type)),
    source: condition,
  }
}

type Scalar = 'String' | 'ID' | 'Number' | 'Boolean' | 'Date' | undefined

function scalarType(type: AttributeType | undefined): Scalar {
  switch (type) {
    case 'String':
    case 'ID':
    case 'Boolean':
    case 'Date':
      return type as Scalar
    case 'Int':
    case 'Long':
    case 'Float':
    case 'BigInt':
      return 'Number'
    default:
      return undefined
  }
}

function invalid(condition: Condition, detail: string): never {
  throw new QueryError('QUERY_INVALID_VALUE', detail, condition.position, condition.text)
}

function operandOf(condition: Condition, type: Scalar): Operand {
  const { operator, prefix, value: text } = condition
  const name = condition.path.join('.')
  if (TEXT_OPERATORS.has(operator)) {
    if (
      (type !== undefined && type !== 'String' && type !== 'ID') ||
      (prefix !== undefined && prefix !== 'string')
    ) {
      throw new QueryError(
        'QUERY_OPERATOR_TYPE',
        `=${operator}= compares text; ${name} is ${type ?? `given a ${prefix}`}`,
        condition.position,
        condition.text,
      )
    }
    return { string: text }
  }
  if (!condition.strict && prefix === undefined && text === 'null') {
    if (RANGE_OPERATORS.has(operator))
      invalid(condition, `null is neither less nor greater than anything (=${operator}=)`)
    return { null: true }
  }
  switch (type) {
    case 'String':
      return { string: text }
    case 'ID':
      // An ID holds strings or integers: `ref==5` finds either (`05` is text only).
      return INTEGER.test(text) && Number.isSafeInteger(Number(text)) && String(Number(text)) === text
        ? { string: text, number: Number(text) }
        : { string: text }
    case 'Number':
      return { number: toNumber(condition, text, name) }
    case 'Boolean':
      return { boolean: toBoolean(condition, text, name) }
    case 'Date':
      return { date: toDate(condition, text, name) }
  }
  if (condition.strict) return { string: text }
  switch (prefix) {
    case 'string':
      return { string: text }
    case 'number':
      return { number: toNumber(condition, text, name) }
    case 'boolean':
      return { boolean: toBoolean(condition, text, name) }
    case 'date':
      return { date: toDate(condition, text, name) }
  }
  // Untyped and unprefixed: by its look.
  if (text === 'true' || text === 'false') return { boolean: text === 'true' }
  if (NUMBER.test(text)) {
    const n = Number(text)
    if (Number.isFinite(n)) return { number: n }
  }
  return { string: text }
}

function toNumber(condition: Condition, text: string, name: string): number {
  const n = Number(text)
  if (!NUMBER.test(text) || !Number.isFinite(n)) invalid(condition, `${name}: '${text}' is not a number`)
  return n
}

function toBoolean(condition: Condition, text: string, name: string): boolean {
  if (text !== 'true' && text !== 'false') invalid(condition, `${name}: '${text}' is not true or false`)
  return text === 'true'
}

function toDate(condition: Condition, text: string, name: string): number {
  const ms = INTEGER.test(text) ? Number(text) : Date.parse(text)
  if (!Number.isFinite(ms))
    invalid(condition, `${name}: '${text}' is not a date (ISO 8601 or epoch milliseconds)`)
  return ms
}
