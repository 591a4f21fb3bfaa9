/**
 * Maps a request URL onto the resource runtime: `/Dog/123` is the record target `Dog/123`, `/Dog/`
 * (or `/Dog`) is the table `Dog`; the query part of a table URL becomes a ListQuery. Table names are
 * resolved by the runtime (export names, case-insensitive fallback), not here.
 */
import { parseQuery, QueryError } from '@proj/query'
import type { ListQuery } from '@proj/resource'
import { HttpError } from './errors.js'

export type Route =
  | { kind: 'record'; path: string; id: string; target: string }
  | { kind: 'table'; path: string; target: string }

/** Query parameters the transport reads itself (content negotiation, credentials, SSE resume): never conditions. */
const TRANSPORT_PARAMS: readonly string[] = ['accept', 'access_token', 'lastEventId']

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

/** Parameters of a WebSocket or SSE URL that are the transport's, never part of a subscribed query. */
const STREAM_PARAMS = /^(accept|access_token|lastEventId|content-type)(=|$)/

/**
 * What a WebSocket or SSE request streams: the record or table, or for a table URL with a query
 * (`/Dog/?breed=Lab`) the query subscription `Dog/?breed=Lab`, its raw text minus the transport's
 * own parameters.
 */
export function streamTarget(route: Route, search: string): string {
  if (route.kind !== 'table' || search.length <= 1) return route.target
  const query = search
    .slice(search.startsWith('?') ? 1 : 0)
    .split('&')
    .filter((part) => part !== '' && !STREAM_PARAMS.test(part))
    .join('&')
  return query === '' ? route.target : `${route.target}?${query}`
}

/**
 * A ListQuery from the raw query part of a URL (`url.search`, with or without its `?`), in HarperDB's
 * query language: `?breed=Lab&age=gt=3&select(name)&sort(-age)&limit(10)`, and the parameters
 * `limit=`, `offset=`, `select=`, `sort=` and keyset `after=` as before. Throws HttpError `INVALID`
 * (400) naming the condition and its position (also in `details`: `code`, `position`, `condition`).
 */
export function parseListQuery(search: string): ListQuery {
  try {
    return {
      query: parseQuery(search.startsWith('?') ? search.slice(1) : search, { ignore: TRANSPORT_PARAMS }),
    }
  } catch (error) {
    if (!(error instanceof QueryError)) throw error
    // INVALID like every other bad request; the query error's code, position and condition in details.
    throw new HttpError('INVALID', error.message, {
      cause: error,
      details: { code: error.code, position: error.position, condition: error.condition },
    })
  }
}
