/**
 * Maps a request URL onto the resource runtime: `/Dog/123` is the record target `Dog/123`, `/Dog/`
 * (or `/Dog`) is the table `Dog`; query parameters on a table become a ListQuery. Table names are
 * resolved by the runtime (export names, case-insensitive fallback), not here.
 */
import type { ListQuery } from '@proj/resource'
import { HttpError } from './errors.js'

export type Route =
  | { kind: 'record'; path: string; id: string; target: string }
  | { kind: 'table'; path: string; target: string }

/** Query parameters with a meaning of their own; every other parameter is an attribute condition. */
export const RESERVED_PARAMS: ReadonlySet<string> = new Set([
  'limit',
  'offset',
  'after',
  'select',
  'sort',
  'accept',
  'access_token',
  'lastEventId',
])

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch (cause) {
    throw new HttpError('INVALID', `malformed percent-encoding in '${segment}'`, { cause })
  }
}

/**
 * Parses a pathname. The first segment is the table; everything after the next `/` is the record id
 * (it may itself contain `/`). Undefined for `/`.
 */
export function parseRoute(pathname: string): Route | undefined {
  const rest = pathname.replace(/^\/+/, '')
  if (rest === '') return undefined
  const slash = rest.indexOf('/')
  const path = decode(slash < 0 ? rest : rest.slice(0, slash))
  if (path === '') return undefined
  const rawId = slash < 0 ? '' : rest.slice(slash + 1)
  if (rawId === '') return { kind: 'table', path, target: `${path}/` }
  // Decode per segment so an encoded slash (%2F) and a literal one both end up in the id.
  const id = rawId.split('/').map(decode).join('/')
  return { kind: 'record', path, id, target: `${path}/${id}` }
}

function nonNegativeInt(name: string, value: string): number {
  if (!/^\d+$/.test(value)) throw new HttpError('INVALID', `'${name}' must be a non-negative integer`)
  return Number(value)
}

/**
 * A ListQuery from query parameters: `?name=Rex&limit=10&offset=20&select=name,age&sort=-age,name`,
 * `after=<cursor>` from a previous page's `Link: <…>; rel="next"` (keyset pagination).
 * A `-` (or a trailing `:desc`) sorts descending; a `+` or `:asc` ascending.
 */
export function parseListQuery(params: URLSearchParams): ListQuery {
  const query: ListQuery = {}
  // No prototype: `?constructor=x` and `?__proto__=x` name attributes like any other parameter.
  const where: Record<string, string> = Object.create(null)
  for (const [key, value] of params) {
    if (RESERVED_PARAMS.has(key)) continue
    if (Object.hasOwn(where, key)) throw new HttpError('INVALID', `attribute '${key}' given twice`)
    where[key] = value
  }
  if (Object.keys(where).length > 0) query.where = where
  const limit = params.get('limit')
  if (limit !== null) query.limit = nonNegativeInt('limit', limit)
  const offset = params.get('offset')
  if (offset !== null) query.offset = nonNegativeInt('offset', offset)
  const after = params.get('after')
  if (after !== null) query.after = after
  const select = params.get('select')
  if (select !== null) {
    const fields = select
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')
    if (fields.length > 0) query.select = fields
  }
  const sort = params.get('sort')
  if (sort !== null) {
    const keys = sort
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')
      .map((s) => {
        let descending = false
        if (s.startsWith('-')) [descending, s] = [true, s.slice(1)]
        else if (s.startsWith('+')) s = s.slice(1)
        const suffix = /:(asc|desc)$/i.exec(s)
        if (suffix) {
          descending = suffix[1]!.toLowerCase() === 'desc'
          s = s.slice(0, suffix.index)
        }
        if (s === '') throw new HttpError('INVALID', `malformed sort key in '${sort}'`)
        return descending ? { attribute: s, descending } : { attribute: s }
      })
    if (keys.length > 0) query.sort = keys
  }
  return query
}
