/**
 * The admin HTTP API the Studio uses, under `/_admin/`: JSON, the same authentication as REST (Basic,
 * Bearer from `/login`, `?access_token=`). What a user may see follows its role: tables it may read
 * for everyone signed in; clients, sessions, users and roles for administrators only. A refusal is
 * decided before anything is looked up, so a non-administrator learns nothing from it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { HttpError, requestUser } from '@proj/http'
import type { Broker } from '@proj/mqtt'
import type { ResourceRuntime, TypeRef, User } from '@proj/resource'
import type { RecordCounts } from './record-counts.js'

/** Path prefix of the admin API; no table may export a path starting with its first segment. */
export const ADMIN_PREFIX = '/_admin/'

export interface AdminApiOptions {
  runtime: ResourceRuntime
  broker: Broker
  counts: RecordCounts
  /** Largest JSON body accepted (the server's http.maxBodySize). */
  maxBodySize: number
}

/** What `GET /_admin/tables` lists per table. */
interface TableSummary {
  name: string
  /** The REST path and topic prefix (`/Dog/`, `Dog/#`); null when the table is not exported. */
  exportPath: string | null
  records: number
  primaryKey: string | null
  sealed: boolean
  /** Seconds after the last write when a record expires. */
  expiration: number | null
  attributes: { name: string; type: string; required: boolean; indexed: boolean; primaryKey: boolean }[]
  /** Attributes with a secondary index (`@indexed`). */
  indexes: string[]
}

type Handler = (req: IncomingMessage, res: ServerResponse, user: User, params: string[]) => Promise<void>

interface Route {
  method: string
  /** Path segments after the prefix; `:x` takes one segment. */
  pattern: string[]
  admin: boolean
  handler: Handler
}

/** The route handler for every path under {@link ADMIN_PREFIX}. */
export function adminApi(options: AdminApiOptions) {
  const { runtime, broker, counts } = options
  const routes: Route[] = []
  const route = (method: string, path: string, admin: boolean, handler: Handler) =>
    routes.push({ method, pattern: path.split('/'), admin, handler })

  route('GET', 'me', false, async (_req, res, user) => {
    json(res, 200, { username: user.username, role: user.role, admin: runtime.isSuperUser(user) })
  })

  route('GET', 'tables', false, async (_req, res, user) => {
    const admin = runtime.isSuperUser(user)
    const out: TableSummary[] = []
    for (const table of runtime.schema.tables) {
      if (!admin && !(table.exportPath && (await mayRead(runtime, user, table.exportPath)))) continue
      out.push({
        name: table.name,
        exportPath: table.exportPath ?? null,
        records: counts.count(table.storageName),
        primaryKey: table.primaryKey?.name ?? null,
        sealed: table.sealed,
        expiration: table.expiration ?? null,
        attributes: table.attributes.map((a) => ({
          name: a.name,
          type: typeName(a.type),
          required: a.type.required,
          indexed: a.indexed,
          primaryKey: a.primaryKey,
        })),
        indexes: table.attributes.filter((a) => a.indexed).map((a) => a.name),
      })
    }
    json(res, 200, out)
  })

  route('GET', 'clients', true, async (_req, res) => json(res, 200, broker.listClients()))
  route('GET', 'sessions', true, async (_req, res) => json(res, 200, broker.listSessions()))
  route('DELETE', 'clients/:id', true, async (_req, res, _user, [clientId]) => {
    if (!broker.disconnectClient(clientId!))
      throw new HttpError('NOT_FOUND', `no client ${clientId} is connected`)
    res.writeHead(204).end()
  })

  route('GET', 'users', true, async (_req, res) => {
    // Users.list() returns name, role and flag only: hashes and SCRAM keys never leave the store.
    json(
      res,
      200,
      runtime.users.list().map((u) => ({ username: u.username, role: u.role, superUser: u.superUser })),
    )
  })
  route('POST', 'users', true, async (req, res) => {
    const body = await jsonBody(req, options.maxBodySize)
    const { username, password, role, superUser } = body
    if (typeof username !== 'string' || typeof password !== 'string')
      throw new HttpError('INVALID', 'a user needs a username and a password (strings)')
    if (role !== undefined && typeof role !== 'string')
      throw new HttpError('INVALID', 'role must be a string')
    if (superUser !== undefined && typeof superUser !== 'boolean')
      throw new HttpError('INVALID', 'superUser must be true or false')
    const created = await runtime.users.add(username, password, {
      ...(role !== undefined ? { role } : {}),
      ...(superUser !== undefined ? { superUser } : {}),
    })
    res.setHeader('Location', `${ADMIN_PREFIX}users/${encodeURIComponent(created.username)}`)
    json(res, 201, { username: created.username, role: created.role, superUser: created.superUser })
  })
  route('PUT', 'users/:name/password', true, async (req, res, _user, [name]) => {
    const { password } = await jsonBody(req, options.maxBodySize)
    if (typeof password !== 'string') throw new HttpError('INVALID', 'password must be a string')
    await runtime.users.setPassword(name!, password)
    res.writeHead(204).end()
  })

  route('GET', 'roles', true, async (_req, res) => {
    json(
      res,
      200,
      runtime.roles().map((r) => ({
        name: r.name,
        superUser: r.superUser === true,
        tables: r.tables ?? {},
        topics: r.topics ?? [],
      })),
    )
  })

  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const method = req.method ?? 'GET'
    const segments = url.pathname.slice(ADMIN_PREFIX.length).split('/').map(decodeSegment)
    // Authentication first, so an anonymous caller learns nothing about which paths exist.
    const user = await requestUser(runtime, req, url.searchParams)
    if (user === null || user === runtime.anonymous()) {
      throw new HttpError(
        'UNAUTHORIZED',
        'the admin API needs credentials (Basic, or a Bearer token from /login)',
      )
    }
    const matched = routes.filter((r) => matches(r.pattern, segments))
    const found = matched.find((r) => r.method === method || (method === 'HEAD' && r.method === 'GET'))
    if (!found) {
      if (matched.length > 0) {
        res.setHeader('Allow', matched.map((r) => r.method).join(', '))
        throw new HttpError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${url.pathname}`)
      }
      throw new HttpError('NOT_FOUND', `no admin resource at ${url.pathname}`)
    }
    if (found.admin && !runtime.isSuperUser(user)) {
      throw new HttpError('FORBIDDEN', 'administrators only')
    }
    const params = found.pattern.flatMap((p, i) => (p.startsWith(':') ? [segments[i]!] : []))
    // The runtime's errors (a user that exists: CONFLICT, an unknown role: INVALID) keep their code,
    // which the HTTP handler maps to a status like any REST error.
    await found.handler(req, res, user, params)
  }
}

function matches(pattern: string[], segments: string[]): boolean {
  if (pattern.length !== segments.length) return false
  return pattern.every((p, i) => p.startsWith(':') || p === segments[i])
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch (cause) {
    throw new HttpError('INVALID', `malformed percent-encoding in '${segment}'`, { cause })
  }
}

/** Whether `user` may list a table: the runtime's own permission check, asked for nothing. */
async function mayRead(runtime: ResourceRuntime, user: User, path: string): Promise<boolean> {
  try {
    await runtime.listPage(path, { limit: 0 }, { user, transport: 'http' })
    return true
  } catch {
    return false
  }
}

/** A GraphQL-style type name: `String`, `[Int]`, an object or enum type's name. */
function typeName(type: TypeRef): string {
  return type.kind === 'list' ? `[${typeName(type.of)}]` : type.name
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value)
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(body),
  })
  res.end(body)
}

async function jsonBody(req: IncomingMessage, maxBytes: number): Promise<Record<string, unknown>> {
  const type = req.headers['content-type'] ?? ''
  if (!/^application\/json\b/i.test(type)) {
    throw new HttpError('UNSUPPORTED_MEDIA_TYPE', 'send application/json')
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > maxBytes) throw new HttpError('TOO_LARGE', `body over ${maxBytes} bytes`)
    chunks.push(chunk as Buffer)
  }
  let value: unknown
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch (cause) {
    throw new HttpError('INVALID', 'the body is not valid JSON', { cause })
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new HttpError('INVALID', 'the body must be a JSON object')
  return value as Record<string, unknown>
}
