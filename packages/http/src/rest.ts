/**
 * REST on records (RFC 9110 methods and conditional requests): GET / HEAD / PUT / PATCH / DELETE on
 * `/Table/id`, GET / HEAD / POST on `/Table/`. Every call goes through the runtime, which checks
 * permissions and validates values.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Selection } from '@proj/query'
import type { RecordResult, RequestContext, Runtime, Timestamp } from '@proj/resource'
import { readBody } from './body.js'
import { errorCode, HttpError } from './errors.js'
import { formatETag, parseTagList, singleVersion, strongMatch, weakMatch } from './etag.js'
import { CSV_TYPE, chooseResponseType, decodeBody, encodeValue, toCsv } from './media.js'
import { requestHeader } from './request-header.js'
import { send } from './respond.js'
import { parseListQuery, type Route } from './route.js'

export interface RestContext {
  runtime: Runtime
  req: IncomingMessage
  res: ServerResponse
  route: Route
  query: URLSearchParams
  /** The raw query part of the URL (`?a=1&b=gt=2`, or empty), parsed by the query language for lists. */
  search: string
  /** The Accept header, or the `?accept=` fallback when given. */
  accept: string | undefined
  ctx: RequestContext
  maxBodySize: number
  /** Set when the request carried a precondition, so a runtime CONFLICT becomes 412. */
  preconditioned: boolean
}

const RECORD_METHODS = 'GET, HEAD, PUT, PATCH, DELETE, OPTIONS'
const TABLE_METHODS = 'GET, HEAD, POST, OPTIONS'

function methodNotAllowed(rc: RestContext): never {
  rc.res.setHeader('Allow', rc.route.kind === 'record' ? RECORD_METHODS : TABLE_METHODS)
  throw new HttpError(
    'METHOD_NOT_ALLOWED',
    `${rc.req.method} is not allowed on ${rc.route.kind === 'record' ? 'a record' : 'a table'}`,
  )
}

/**
 * Evaluates If-Match / If-None-Match for a write (RFC 9110 section 13.2.2) and returns the version to
 * hand the runtime, which compares it atomically with the write. A single strong tag is passed
 * through unread; `*` and lists need the current version first.
 */
async function writePrecondition(rc: RestContext, target: string): Promise<Timestamp | undefined> {
  const ifMatch = parseTagList(requestHeader(rc.req, 'if-match'))
  const ifNoneMatch = parseTagList(requestHeader(rc.req, 'if-none-match'))
  if (ifMatch === undefined && ifNoneMatch === undefined) return undefined
  rc.preconditioned = true
  if (ifMatch !== undefined) {
    const direct = singleVersion(ifMatch)
    if (direct !== undefined && ifNoneMatch === undefined) return direct
  }
  const current = await rc.runtime.get(target, rc.ctx)
  if (ifMatch !== undefined && (!current || !strongMatch(ifMatch, current.version))) {
    throw new HttpError('PRECONDITION_FAILED', 'If-Match does not match the current version')
  }
  if (ifNoneMatch !== undefined && current && weakMatch(ifNoneMatch, current.version)) {
    throw new HttpError('PRECONDITION_FAILED', 'If-None-Match matches the current version')
  }
  return current?.version
}

async function requestValue(rc: RestContext): Promise<unknown> {
  const body = await readBody(rc.req, rc.maxBodySize)
  return decodeBody(body, requestHeader(rc.req, 'content-type'))
}

function locationOf(path: string, id: unknown): string {
  const idText = Array.isArray(id) ? id.join('/') : String(id)
  return `/${encodeURIComponent(path)}/${idText.split('/').map(encodeURIComponent).join('/')}`
}

/**
 * Answers GET / HEAD on an existing record. If-Match is evaluated before If-None-Match (RFC 9110
 * section 13.2.2); a missing record is a 404 before this point, and preconditions are ignored then.
 */
function sendRecord(rc: RestContext, record: RecordResult): void {
  const etag = formatETag(record.version)
  const ifMatch = parseTagList(requestHeader(rc.req, 'if-match'))
  if (ifMatch !== undefined && !strongMatch(ifMatch, record.version)) {
    throw new HttpError('PRECONDITION_FAILED', 'If-Match does not match the current version')
  }
  const ifNoneMatch = parseTagList(requestHeader(rc.req, 'if-none-match'))
  if (ifNoneMatch !== undefined && weakMatch(ifNoneMatch, record.version)) {
    send(rc.res, 304, { ETag: etag })
    return
  }
  // Raw bytes (a value kept with its own content type) are served as they are, byte for byte.
  if (record.value instanceof Uint8Array && record.contentType) {
    send(rc.res, 200, { ETag: etag, 'Content-Type': record.contentType }, record.value)
    return
  }
  const type = chooseResponseType(rc.accept)
  send(rc.res, 200, { ETag: etag, 'Content-Type': type, Vary: 'Accept' }, encodeValue(record.value, type))
}

async function getRecord(rc: RestContext, target: string): Promise<void> {
  const record = await rc.runtime.get(target, rc.ctx)
  if (!record) throw new HttpError('NOT_FOUND', `${target} not found`)
  sendRecord(rc, record)
}

/** Splits a raw query string at the `&`s that are outside brackets and parentheses. */
function topLevelTerms(search: string): string[] {
  const terms: string[] = []
  let depth = 0
  let start = 0
  for (let i = 0; i < search.length; i++) {
    const c = search[i]
    if (c === '(' || c === '[') depth++
    else if ((c === ')' || c === ']') && depth > 0) depth--
    else if (c === '&' && depth === 0) {
      terms.push(search.slice(start, i))
      start = i + 1
    }
  }
  terms.push(search.slice(start))
  return terms.filter((t) => t !== '')
}

/**
 * The `Link` header of a page with more records (RFC 8288): the same request, query text kept as
 * written, with the runtime's cursor as `after`. `offset` (and the start of `limit(start,end)`) was
 * spent on the first page and is dropped, and so is `access_token` (a link must not carry a credential).
 */
export function nextPageLink(requestUrl: string, cursor: string): string {
  const url = new URL(requestUrl, 'http://localhost')
  const terms: string[] = []
  for (const term of topLevelTerms(url.search.slice(1))) {
    if (/^(after|offset|access_token)=/.test(term)) continue
    const range = /^limit\((\d+),(\d+)\)$/.exec(term)
    terms.push(range ? `limit(${Number(range[2]) - Number(range[1])})` : term)
  }
  terms.push(`after=${encodeURIComponent(cursor)}`)
  return `<${url.pathname}?${terms.join('&')}>; rel="next"`
}

/** Rows for CSV: `select(a)` values and `select([a,b])` arrays become objects named by the selection. */
function csvRows(values: unknown[], select: Selection | undefined): { rows: unknown[]; columns?: string[] } {
  if (!select) return { rows: values }
  const columns = select.fields.map((f) => f.name)
  if (select.kind === 'value') return { rows: values.map((v) => ({ [columns[0]!]: v })), columns }
  if (select.kind === 'array') {
    const rows = values.map((v) =>
      Object.fromEntries(columns.map((c, i) => [c, Array.isArray(v) ? v[i] : undefined])),
    )
    return { rows, columns }
  }
  return { rows: values, columns }
}

async function listTable(rc: RestContext, path: string): Promise<void> {
  const query = parseListQuery(rc.search)
  const type = chooseResponseType(rc.accept, { csv: true })
  const page = await rc.runtime.listPage(path, query, rc.ctx)
  const values = page.items.map((r) => r.value)
  const headers: Record<string, string> = { Vary: 'Accept' }
  if (page.next !== undefined) headers.Link = nextPageLink(rc.req.url ?? '/', page.next)
  if (page.reads !== undefined) {
    // How selective the query's plan was: an indexed range reads about what it returns.
    headers['X-Records-Read'] = String(page.reads.records)
    headers['X-Index-Keys-Read'] = String(page.reads.keys)
  }
  if (type === CSV_TYPE) {
    headers['Content-Type'] = 'text/csv; charset=utf-8; header=present'
    const { rows, columns } = csvRows(values, query.query?.select)
    send(rc.res, 200, headers, toCsv(rows, columns))
    return
  }
  headers['Content-Type'] = type
  send(rc.res, 200, headers, encodeValue(values, type))
}

/** A POST names its id in the body, not the URI: an id too long to store is a bad request (400), not 414. */
function idInBody(err: unknown): never {
  if (errorCode(err) === 'KEY_TOO_LONG')
    throw new HttpError('INVALID', (err as Error).message, { cause: err })
  throw err
}

/** Runs one REST request; errors propagate to the caller, which renders them. */
export async function handleRest(rc: RestContext): Promise<void> {
  const { route, runtime, ctx } = rc
  const method = rc.req.method ?? 'GET'
  if (route.kind === 'record') {
    const target = route.target
    switch (method) {
      case 'GET':
      case 'HEAD':
        return getRecord(rc, target)
      case 'PUT': {
        const value = await requestValue(rc)
        const ifVersion = await writePrecondition(rc, target)
        const result = await runtime.put(
          target,
          value,
          ctx,
          ifVersion === undefined ? undefined : { ifVersion },
        )
        const headers: Record<string, string> = { ETag: formatETag(result.version) }
        if (result.created) headers.Location = locationOf(route.path, result.id)
        return send(rc.res, result.created ? 201 : 204, headers)
      }
      case 'PATCH': {
        const value = await requestValue(rc)
        const ifVersion = await writePrecondition(rc, target)
        const result = await runtime.patch(
          target,
          value,
          ctx,
          ifVersion === undefined ? undefined : { ifVersion },
        )
        return send(rc.res, 204, { ETag: formatETag(result.version) })
      }
      case 'DELETE': {
        const ifVersion = await writePrecondition(rc, target)
        const deleted = await runtime.delete(target, ctx, ifVersion === undefined ? undefined : { ifVersion })
        if (!deleted) throw new HttpError('NOT_FOUND', `${target} not found`)
        return send(rc.res, 204, {})
      }
      case 'OPTIONS':
        return send(rc.res, 204, { Allow: RECORD_METHODS })
      default:
        return methodNotAllowed(rc)
    }
  }
  switch (method) {
    case 'GET':
    case 'HEAD':
      return listTable(rc, route.path)
    case 'POST': {
      const type = chooseResponseType(rc.accept)
      const value = await requestValue(rc)
      const result = await runtime.post(route.path, value, ctx).catch(idInBody)
      const headers = {
        Location: locationOf(route.path, result.id),
        ETag: formatETag(result.version),
        'Content-Type': type,
      }
      return send(rc.res, 201, headers, encodeValue(result.id, type))
    }
    case 'OPTIONS':
      return send(rc.res, 204, { Allow: TABLE_METHODS })
    default:
      return methodNotAllowed(rc)
  }
}
