/** Arguments of `select()`, `limit()`, `sort()` and of the `select=` / `sort=` parameters. */
import type { SelectField, Selection, SortKey } from './ast.js'
import { decodePiece } from './decode.js'
import { QueryError } from './errors.js'

function fail(detail: string, position: number, text: string): never {
  throw new QueryError('QUERY_UNKNOWN_FUNCTION', detail, position, text)
}

/**
 * `select(a)` (the value alone), `select(a,)` and `select(a,b)` (objects), `select([a,b])` (arrays),
 * `select(a,brand{name,id})` (nested). `start` is the offset of `raw` in the query.
 */
export function parseSelectArguments(raw: string, start: number, text: string): Selection {
  let p = 0
  const array = raw[0] === '['
  if (array) p = 1
  let trailingComma = false

  const fields = (closer: string | undefined): SelectField[] => {
    const out: SelectField[] = []
    for (;;) {
      const from = p
      while (p < raw.length && !',{}[]'.includes(raw[p]!)) p++
      const name = decodePiece(raw.slice(from, p), start + from, text).trim()
      if (name === '') fail('select() needs attribute names', start + from, text)
      let field: SelectField = { name }
      if (raw[p] === '{') {
        const open = p++
        const nested = fields('}')
        if (raw[p] !== '}') fail(`'{' is never closed`, start + open, text)
        p++
        field = { name, select: nested }
      }
      out.push(field)
      if (raw[p] !== ',') break
      p++
      if (p === raw.length || raw[p] === closer) {
        if (closer === undefined) trailingComma = true
        break
      }
    }
    if (p < raw.length && raw[p] !== closer) fail(`unexpected '${raw[p]}' in select()`, start + p, text)
    return out
  }

  if (raw.trim() === '') fail('select() needs attribute names', start, text)
  const list = fields(array ? ']' : undefined)
  if (array) {
    if (raw[p] !== ']') fail(`'[' is never closed in select()`, start, text)
    if (p + 1 !== raw.length) fail(`unexpected '${raw[p + 1]}' after ']' in select()`, start + p + 1, text)
    return { kind: 'array', fields: list }
  }
  return { kind: list.length === 1 && !trailingComma ? 'value' : 'object', fields: list }
}

/** `select=a,b`: always objects, as before the query language (empty names are skipped). */
export function parseSelectParameter(raw: string, start: number, text: string): Selection | undefined {
  const fields: SelectField[] = []
  let offset = start
  for (const piece of raw.split(',')) {
    const name = decodePiece(piece, offset, text).trim()
    if (name !== '') fields.push({ name })
    offset += piece.length + 1
  }
  return fields.length === 0 ? undefined : { kind: 'object', fields }
}

/** `limit(end)` or `limit(start,end)`: non-negative integers, `end >= start`. */
export function parseLimitArguments(
  raw: string,
  start: number,
  text: string,
): { limit: number; offset?: number } {
  const parts = raw.split(',')
  if (parts.length > 2) fail('limit() takes one or two numbers', start, text)
  const numbers: number[] = []
  let offset = start
  for (const part of parts) {
    const value = decodePiece(part, offset, text).trim()
    if (!/^\d+$/.test(value)) {
      throw new QueryError('QUERY_INVALID_VALUE', 'limit() takes non-negative integers', offset, text)
    }
    numbers.push(Number(value))
    offset += part.length + 1
  }
  if (numbers.length === 1) return { limit: numbers[0]! }
  const [from, to] = numbers as [number, number]
  if (to < from)
    throw new QueryError('QUERY_INVALID_VALUE', 'limit(start,end) needs end >= start', start, text)
  return { limit: to - from, offset: from }
}

/**
 * `sort(+a,-b,brand.name)` and `sort=-a,b`: `-` descending, `+` (or nothing) ascending; the parameter
 * form also takes a trailing `:asc` / `:desc`, as before. A bare `+` in a URL decodes to a space, so
 * `sort(+a)` works either way.
 */
export function parseSortList(raw: string, start: number, text: string, parameter: boolean): SortKey[] {
  const keys: SortKey[] = []
  let offset = start
  for (const piece of raw.split(',')) {
    const at = offset
    offset += piece.length + 1
    let name = decodePiece(piece, at, text).trim()
    if (name === '') {
      if (parameter) continue
      fail('empty sort key', at, text)
    }
    let descending = false
    if (name.startsWith('-')) [descending, name] = [true, name.slice(1).trim()]
    else if (name.startsWith('+')) name = name.slice(1).trim()
    if (parameter) {
      const suffix = /:(asc|desc)$/i.exec(name)
      if (suffix) {
        descending = suffix[1]!.toLowerCase() === 'desc'
        name = name.slice(0, suffix.index)
      }
    }
    const path = name.split('.')
    if (path.some((segment) => segment === '')) {
      throw new QueryError('QUERY_SYNTAX', `malformed sort key '${piece}'`, at, text)
    }
    keys.push({ path, descending })
  }
  return keys
}
