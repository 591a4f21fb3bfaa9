/**
 * Compiling a bound filter into a predicate. The rules (decided in issue 14):
 * - `lt le gt ge sw ew ct` never match null or a missing attribute, nor a value of another kind
 *   than the operand's (a string is never less than a number);
 * - `==null` matches null and missing; `!=X` matches every record whose value is not X, null and
 *   missing included;
 * - on an array, a positive operator matches when some element does (`tags==x`), `!=` when no
 *   element equals (`tags!=x`).
 */
import { type AccessorFactory, accessorFor } from './accessor.js'
import type { BoundCondition, BoundFilter, Operand } from './bind.js'
import { compareText } from './values.js'

export type Predicate = (record: unknown) => boolean

export interface EvaluateOptions {
  /** Accessors for paths the default cannot read (relationships); see {@link AccessorFactory}. */
  accessor?: AccessorFactory
}

const always: Predicate = () => true

/**
 * A predicate for a bound filter (every record passes when there is none).
 *
 * @example
 * const matches = compileFilter(bindFilter(parseQuery('age=gt=3').filter!))
 * matches({ age: 5 }) // true
 */
export function compileFilter(filter: BoundFilter | undefined, options: EvaluateOptions = {}): Predicate {
  if (!filter) return always
  return compile(filter, options)
}

function compile(filter: BoundFilter, options: EvaluateOptions): Predicate {
  if (filter.type === 'condition') return compileCondition(filter, options)
  const parts = filter.children.map((child) => compile(child, options))
  if (parts.length === 1) return parts[0]!
  if (filter.type === 'and') {
    if (parts.length === 2) {
      const [a, b] = parts as [Predicate, Predicate]
      return (record) => a(record) && b(record)
    }
    return (record) => {
      for (let i = 0; i < parts.length; i++) if (!parts[i]!(record)) return false
      return true
    }
  }
  if (parts.length === 2) {
    const [a, b] = parts as [Predicate, Predicate]
    return (record) => a(record) || b(record)
  }
  return (record) => {
    for (let i = 0; i < parts.length; i++) if (parts[i]!(record)) return true
    return false
  }
}

/** A test of one non-array value. */
type Test = (value: unknown) => boolean

function compileCondition(condition: BoundCondition, options: EvaluateOptions = {}): Predicate {
  const get = accessorFor(condition.path, options.accessor)
  const test = scalarTest(condition)
  if (condition.operator === 'ne') {
    return (record) => {
      const value = get(record)
      return !(Array.isArray(value) ? value.some(test) : test(value))
    }
  }
  return (record) => {
    const value = get(record)
    return Array.isArray(value) ? value.some(test) : test(value)
  }
}

/** The positive test of a condition on one value (`ne` is its negation). */
function scalarTest(condition: BoundCondition): Test {
  const operand = condition.operand
  switch (condition.operator) {
    case 'eq':
    case 'ne':
      return equals(operand)
    case 'lt': {
      const c = comparison(operand)
      return (v) => c(v) < 0
    }
    case 'le': {
      const c = comparison(operand)
      return (v) => c(v) <= 0
    }
    case 'gt': {
      const c = comparison(operand)
      return (v) => c(v) > 0
    }
    case 'ge': {
      const c = comparison(operand)
      return (v) => c(v) >= 0
    }
    case 'sw': {
      const s = operand.string ?? ''
      return (v) => typeof v === 'string' && v.startsWith(s)
    }
    case 'ew': {
      const s = operand.string ?? ''
      return (v) => typeof v === 'string' && v.endsWith(s)
    }
    case 'ct': {
      const s = operand.string ?? ''
      return (v) => typeof v === 'string' && v.includes(s)
    }
  }
}

function equals(operand: Operand): Test {
  const { string: s, number: n, boolean: b, date: d } = operand
  const isNull = operand.null === true
  return (v) => {
    if (v === null || v === undefined) return isNull
    switch (typeof v) {
      case 'string':
        return s !== undefined ? v === s : d !== undefined && Date.parse(v) === d
      case 'number':
        return n !== undefined ? v === n : v === d
      case 'boolean':
        return v === b
      case 'bigint':
        return n !== undefined && Number(v) === n
      default:
        return v instanceof Date && v.getTime() === d
    }
  }
}

/** `value - operand` in sign, or NaN when the two are not comparable (NaN fails every test). */
function comparison(operand: Operand): (v: unknown) => number {
  const { string: s, number: n, boolean: b, date: d } = operand
  return (v) => {
    switch (typeof v) {
      case 'string':
        return s !== undefined ? compareText(v, s) : d !== undefined ? Date.parse(v) - d : Number.NaN
      case 'number':
        return n !== undefined ? v - n : d !== undefined ? v - d : Number.NaN
      case 'boolean':
        return b !== undefined ? Number(v) - Number(b) : Number.NaN
      case 'bigint':
        return n !== undefined ? Number(v) - n : Number.NaN
      default:
        return v instanceof Date && d !== undefined ? v.getTime() - d : Number.NaN
    }
  }
}
