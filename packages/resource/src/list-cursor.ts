import type { Key } from '@proj/storage'
import { ResourceError } from './errors.js'

/** What a list cursor carries: the last id of a page and, for sorted lists, its sort values. */
export interface ListCursor {
  id: Key
  /** Sort values of that record (numbers, strings or null), when the list was sorted. */
  values?: (string | number | null)[]
}

/** Opaque to clients: base64url of a small JSON array `[id]` or `[id, values]`. */
export function encodeCursor(cursor: ListCursor): string {
  const body = cursor.values === undefined ? [cursor.id] : [cursor.id, cursor.values]
  return Buffer.from(JSON.stringify(body)).toString('base64url')
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
    !values.every((v) => v === null || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)))
  ) {
    throw new ResourceError('INVALID', 'malformed list cursor')
  }
  return { id: body[0], values }
}

function isScalarKey(value: unknown): value is string | number {
  return typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))
}

function isKey(value: unknown): value is Key {
  return isScalarKey(value) || (Array.isArray(value) && value.length > 0 && value.every(isScalarKey))
}

/** A sort value as a cursor stores it; `compare` orders it exactly like the raw value. */
export function cursorValue(value: unknown): string | number | null {
  if (value === undefined || value === null) return null
  return typeof value === 'number' ? value : String(value)
}

/** Sort order of attribute values in lists: numbers numerically, everything else as text, missing last. */
export function compare(a: unknown, b: unknown): number {
  if (a === b) return 0
  if (a === undefined || a === null) return b === undefined || b === null ? 0 : 1
  if (b === undefined || b === null) return -1
  if (typeof a === 'number' && typeof b === 'number') return a - b
  const x = String(a)
  const y = String(b)
  return x === y ? 0 : x < y ? -1 : 1
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
