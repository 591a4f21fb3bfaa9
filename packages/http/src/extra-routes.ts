/**
 * The caller's extra routes (`HttpOptions.extraRoutes`), checked before records: keyed `'METHOD /path'`
 * or `'/path'` (any method); a key ending in `/*` takes every path under that prefix, and the prefix itself.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

/** A caller-supplied route (e.g. `GET /health`); it writes the whole response itself. */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>

interface PrefixRoute {
  method: string | undefined
  /** With its trailing slash: `/_admin/`. */
  prefix: string
  handler: RouteHandler
}

export class ExtraRoutes {
  private readonly exact: Map<string, RouteHandler>
  private readonly prefixes: PrefixRoute[] = []

  constructor(routes: Record<string, RouteHandler>) {
    this.exact = new Map(Object.entries(routes))
    for (const [key, handler] of Object.entries(routes)) {
      if (!key.endsWith('/*')) continue
      const space = key.indexOf(' ')
      const method = space < 0 ? undefined : key.slice(0, space)
      this.prefixes.push({ method, prefix: key.slice(space + 1, -1), handler })
    }
  }

  /** The route for a request: exact with its method, exact for any method, then the first prefix. */
  find(method: string, pathname: string): RouteHandler | undefined {
    return (
      this.exact.get(`${method} ${pathname}`) ?? this.exact.get(pathname) ?? this.prefix(method, pathname)
    )
  }

  private prefix(method: string, pathname: string): RouteHandler | undefined {
    for (const r of this.prefixes) {
      if (r.method !== undefined && r.method !== method) continue
      if (pathname.startsWith(r.prefix) || pathname === r.prefix.slice(0, -1)) return r.handler
    }
    return undefined
  }
}
