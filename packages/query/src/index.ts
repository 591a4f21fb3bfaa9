/**
 * @proj/query: HarperDB's URL query language (FIQL conditions, unions, groups, select, limit, sort):
 * a parser, an evaluator, and an index of live query subscriptions.
 * @packageDocumentation
 */

export type { Accessor, AccessorFactory } from './accessor.js'
export { pathAccessor } from './accessor.js'
export type {
  Condition,
  FilterNode,
  Junction,
  Operator,
  Query,
  SelectField,
  Selection,
  SortKey,
  ValuePrefix,
} from './ast.js'
export type {
  AttributeType,
  BoundCondition,
  BoundFilter,
  BoundJunction,
  Operand,
  TypeLookup,
} from './bind.js'
export { bindFilter } from './bind.js'
export type { CompiledQuery, CompileOptions } from './compile.js'
export { assertSubscribable, compileQuery } from './compile.js'
export type { QueryErrorCode } from './errors.js'
export { QueryError } from './errors.js'
export type { ParseOptions } from './parse.js'
export { parseQuery } from './parse.js'
export type { EvaluateOptions, Predicate } from './predicate.js'
export { compileFilter } from './predicate.js'
export type { ProjectOptions } from './select.js'
export { compileSelect } from './select.js'
export type { Comparator } from './sort.js'
export { compareSortValues, compileSort } from './sort.js'
export type {
  ChangeVisitor,
  QuerySubscriptionIndexOptions,
  RunVisitor,
  Transition,
} from './subscription-index.js'
export { filedByOneRange, QuerySubscriptionIndex } from './subscription-index.js'
export { compareText, compareValues, prefixEnd } from './values.js'
