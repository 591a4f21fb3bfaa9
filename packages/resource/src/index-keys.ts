/**
 * How attribute values are ordered in secondary index keys `[kind, value, ...id]`: one kind per sort
 * domain, so that an equality is one key and a range condition one contiguous run of keys.
 */
import type { Key } from '@proj/storage'

/** Null and missing (`==null`), value 0. */
export const KIND_NULL = 0
/** false / true as 0 / 1. */
export const KIND_BOOLEAN = 1
/** Numbers, and dates as epoch milliseconds. */
export const KIND_NUMBER = 2
/** Text, cut to its indexable head (see {@link textHead}). */
export const KIND_TEXT = 3

export type IndexKind = typeof KIND_NULL | typeof KIND_BOOLEAN | typeof KIND_NUMBER | typeof KIND_TEXT

/** One entry of an attribute value in an index: its kind and its ordered value. */
export interface IndexValue {
  readonly kind: IndexKind
  readonly value: number | string
}

/** Longest text kept in an index key (LMDB keys are small); a lookup re-checks every record. */
const MAX_INDEXED_TEXT = 200

/**
 * The part of a text an index key holds: at most 200 characters, and nothing from the first control
 * character on (the key encoding uses those as separators). Cutting keeps the order (a text that
 * sorts before another never gets a head that sorts after), so range scans over heads find every
 * match; texts that share a head are told apart by re-checking the record.
 */
export function textHead(text: string): string {
  const end = Math.min(text.length, MAX_INDEXED_TEXT)
  for (let i = 0; i < end; i++) if (text.charCodeAt(i) < 0x20) return text.slice(0, i)
  return text.length > end ? text.slice(0, end) : text
}

/** Whether `textHead` cut this text (a range bound on it then has to be inclusive). */
export function isCut(text: string): boolean {
  return textHead(text).length !== text.length
}

/**
 * The index values of one attribute value. Arrays are indexed element by element (a condition on a
 * list matches when some element does); null and missing are one value; a `Date` attribute indexes
 * its dates as epoch milliseconds whatever form they were written in. Objects and bytes are not
 * indexed.
 */
export function indexValues(value: unknown, isDate: boolean): IndexValue[] {
  if (!Array.isArray(value)) {
    const one = scalarValue(value, isDate)
    return one ? [one] : []
  }
  const out: IndexValue[] = []
  const seen = new Set<string>()
  for (const element of value) {
    const one = scalarValue(element, isDate)
    if (!one) continue
    const key = `${one.kind}:${typeof one.value}:${one.value}`
    if (seen.has(key)) continue
    seen.add(key)
    out.push(one)
  }
  return out
}

function scalarValue(value: unknown, isDate: boolean): IndexValue | undefined {
  switch (typeof value) {
    case 'undefined':
      return { kind: KIND_NULL, value: 0 }
    case 'boolean':
      return { kind: KIND_BOOLEAN, value: value ? 1 : 0 }
    case 'number':
      return Number.isNaN(value) ? undefined : { kind: KIND_NUMBER, value }
    case 'bigint':
      return { kind: KIND_NUMBER, value: Number(value) }
    case 'string': {
      if (isDate) {
        const ms = Date.parse(value)
        if (!Number.isNaN(ms)) return { kind: KIND_NUMBER, value: ms }
      }
      return { kind: KIND_TEXT, value: textHead(value) }
    }
    case 'object':
      if (value === null) return { kind: KIND_NULL, value: 0 }
      if (value instanceof Date) {
        const ms = value.getTime()
        return Number.isNaN(ms) ? undefined : { kind: KIND_NUMBER, value: ms }
      }
      return undefined
    default:
      return undefined
  }
}

/** The index key of (value, id). */
export function indexKey(entry: IndexValue, id: Key): Key {
  return Array.isArray(id)
    ? [entry.kind, entry.value, ...id]
    : [entry.kind, entry.value, id as string | number]
}

/** The record id an index key ends with. */
export function idOfKey(key: readonly (string | number)[]): Key {
  return key.length === 3 ? key[2]! : key.slice(2)
}
