import type { Key } from '@proj/storage'
import { ResourceError } from './errors.js'

/** A sort value in a cursor. */
export type CursorValue = string | number | boolean | Date | null

/** What a list cursor carries: the last id of a page and, for sorted lists, its sort values. */
export interface ListCursor {
  id: Key
  /** Sort values of that record, when the list was sorted. */
  values?: CursorValue[]
}

/** Opaque to clients: base64url of a small JSON array `[id]` or `[id, values]` (a date is `{"$date": ms}`). */
export function encodeCursor(cursor: ListCursor): string {
  const values = cursor.values?.map((v) => (v instanceof Date ? { $date: v.getTime() } : v))
  const body = values === undefined ? [cursor.id] : [cursor.id, values]
  return Buffer.from(JSON.stringify(body)).toString('base64url')
}

function isDateValue(v: unknown): v is { $date: number } {
  return (
    v !== null &&
    typeof v === 'object' &&
    Object.keys(v).length === 1 &&
    typeof (v as { $date?: unknown }).$date === 'number' &&
    Number.isFinite((v as { $date: number }).$date)
  )
}

/** Throws INVALID for anything encodeCursor did not produce. */
export function decodeCursor(text: string): ListCursor {
  let body: unknown
  try {
    body = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'))
  } catch (cause) {
    throw new ResourceError('INVALID', 'malformed list cursor', { cause })
  }
  if (!Array.isArray(body) || body.length < 1 || body.length > 2 || !isKey(body[0])) {
    throw new ResourceError('INVALID', 'malformed list cursor')
  }
  if (body.length === 1) return { id: body[0] }
  const values = body[1]
  if (
    !Array.isArray(values) ||
    !values.every(
      (v) =>
        v === null ||
        typeof v === 'string' ||
        typeof v === 'boolean' ||
        (typeof v === 'number' && Number.isFinite(v)) ||
        isDateValue(v),
    )
  ) {
    throw new ResourceError('INVALID', 'malformed list cursor')
  }
  return { id: body[0], values: values.map((v) => (isDateValue(v) ? new Date(v.$date) : v)) }
}

function isScalarKey(value: unknown): value is string | number {
  return typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))
}

function isKey(value: unknown): value is Key {
  return isScalarKey(value) || (Array.isArray(value) && value.length > 0 && value.every(isScalarKey))
}

/**
 * A sort value as a cursor stores it: numbers, strings, booleans and dates as they are (the sort orders
 * them like the raw value), anything else as its text.
 */
export function cursorValue(value: unknown): CursorValue {
  if (value === undefined || value === null) return null
  if (typeof value === 'number' || typeof value === 'string' || typeof value === 'boolean') return value
  if (value instanceof Date) return value
  return String(value)
}

const encoder = new TextEncoder()

/** Key order of the store (numbers before strings, strings by UTF-8 bytes, arrays element by element). */
export function compareKeys(a: Key, b: Key): number {
  const x = Array.isArray(a) ? a : [a as string | number]
  const y = Array.isArray(b) ? b : [b as string | number]
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const c = compareScalar(x[i]!, y[i]!)
    if (c !== 0) return c
  }
  return x.length - y.length
}

function compareScalar(a: string | number, b: string | number): number {
  if (typeof a === 'number') return typeof b === 'number' ? a - b : -1
  if (typeof b === 'number') return 1
  if (a === b) return 0
  return Buffer.compare(encoder.encode(a), encoder.encode(b))
}

export function keysEqual(a: Key, b: Key): boolean {
  if (!Array.isArray(a) || !Array.isArray(b)) return a === b
  return a.length === b.length && a.every((v, i) => v === b[i])
}
