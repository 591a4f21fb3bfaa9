import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ClusterNode } from '@proj/cluster'
import type { RouteHandler } from '@proj/http'
import type { ResourceRuntime } from '@proj/resource'
import { ConfigError } from './errors.js'

/** `GET /health`: 200 while serving; 503 while stopping or while a cluster node catches up. */
export function healthRoute(isClosing: () => boolean, cluster: () => ClusterNode | undefined) {
  return (_req: IncomingMessage, res: ServerResponse) => {
    const closing = isClosing()
    const node = cluster()
    const ready = node === undefined || node.state === 'ready'
    const body = JSON.stringify({
      status: closing ? 'stopping' : ready ? 'ok' : node.state,
      uptime: Math.round(process.uptime()),
      ...(node !== undefined ? { cluster: node.state, node: node.nodeName, ...node.positions() } : {}),
    })
    // 503 while catching up: a load balancer sends no client here before the node has the cluster's data
    res.writeHead(closing || !ready ? 503 : 200, {
      'Content-Type': 'application/json; charset=utf-8',
      'Cache-Control': 'no-store',
      'Content-Length': Buffer.byteLength(body),
    })
    res.end(body)
  }
}

/**
 * The server's own routes (`/metrics`, `/_admin/`, `/studio/`, `/login`, `/health`) are answered before
 * records: a table exported under one of their first segments could never be reached, so the start fails
 * and says which table and how to rename it. Case-insensitively, like the router's fallback.
 */
export function refuseReservedPaths(runtime: ResourceRuntime, routes: Record<string, RouteHandler>): void {
  const reserved = new Set(['login'])
  for (const key of Object.keys(routes)) {
    const path = key.slice(key.indexOf('/') + 1)
    const first = path.split('/')[0]!
    if (first !== '' && first !== '*') reserved.add(first.toLowerCase())
  }
  const issues = []
  for (const path of runtime.resources().keys()) {
    const first = path.split('/')[0]!.toLowerCase()
    if (!reserved.has(first)) continue
    issues.push({
      key: 'applications.path',
      source: 'schema',
      reason: `the table or resource exported at '${path}' collides with the server's /${first} route; export it under another name (@export(name: "..."))`,
    })
  }
  if (issues.length > 0) throw new ConfigError(issues)
}
