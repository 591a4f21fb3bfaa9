/**
 * The Studio's only way to the server: the same doors every client uses. REST for records, `/login`
 * for a token, `/_admin/` for tables, clients and users, `/metrics` for charts, Server-Sent Events and
 * WebSocket (with `?access_token=`, since browsers cannot set headers on either) for live events.
 */

const TOKEN_KEY = 'proj.studio.session'

export interface Session {
  token: string
  username: string
  role: string
}

/** An error answer of the server: `{ error, message, status }`. */
export class ApiError extends Error {
  override readonly name = 'ApiError'
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

export function loadSession(): Session | null {
  try {
    const raw = sessionStorage.getItem(TOKEN_KEY)
    return raw ? (JSON.parse(raw) as Session) : null
  } catch {
    return null
  }
}

export function saveSession(session: Session | null): void {
  if (session) sessionStorage.setItem(TOKEN_KEY, JSON.stringify(session))
  else sessionStorage.removeItem(TOKEN_KEY)
}

/** `POST /login` with a JSON body; the server answers a Bearer token. */
export async function login(username: string, password: string): Promise<Session> {
  const res = await fetch('/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ username, password }),
  })
  if (!res.ok) throw await errorOf(res)
  const body = (await res.json()) as { token: string; username: string; role: string }
  return { token: body.token, username: body.username, role: body.role }
}

async function errorOf(res: Response): Promise<ApiError> {
  let code = `HTTP_${res.status}`
  let message = res.statusText
  try {
    const body = (await res.json()) as { error?: string; message?: string }
    if (body.error) code = body.error
    if (body.message) message = body.message
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(res.status, code, message)
}

export interface RequestOptions {
  body?: unknown
  headers?: Record<string, string>
}

/** A signed-in client: every request carries the token; a 401 signs the user out. */
export class Api {
  constructor(
    readonly session: Session,
    private readonly onUnauthorized: () => void,
  ) {}

  /** The raw response (for ETag and Link headers); non-2xx answers throw ApiError. */
  async fetch(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = {
      accept: 'application/json',
      authorization: `Bearer ${this.session.token}`,
      ...options.headers,
    }
    let body: string | undefined
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json'
      body = JSON.stringify(options.body)
    }
    const res = await fetch(path, { method, headers, ...(body !== undefined ? { body } : {}) })
    if (res.status === 401) this.onUnauthorized()
    if (!res.ok) throw await errorOf(res)
    return res
  }

  async json<T>(method: string, path: string, options?: RequestOptions): Promise<T> {
    const res = await this.fetch(method, path, options)
    return (res.status === 204 ? undefined : await res.json()) as T
  }

  /** `?access_token=` for EventSource and WebSocket URLs. */
  tokenQuery(): string {
    return `access_token=${encodeURIComponent(this.session.token)}`
  }
}

/** The REST path of a table, record or topic: each segment percent-encoded (`#` → `%23`). */
export function restPath(target: string): string {
  return `/${target
    .replace(/^\/+/, '')
    .split('/')
    .map((s) => encodeURIComponent(s))
    .join('/')}`
}

/** The `after` cursor of a `Link: <…>; rel="next"` header (keyset pagination), if there is one. */
export function nextCursor(link: string | null): string | undefined {
  if (!link) return undefined
  for (const part of link.split(',')) {
    const m = /<([^>]*)>\s*;\s*rel="?next"?/.exec(part)
    if (!m) continue
    return new URL(m[1]!, 'http://localhost').searchParams.get('after') ?? undefined
  }
  return undefined
}
