import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { ClusterNode, ClusterOptions } from '@proj/cluster'
import type { HttpHandler } from '@proj/http'
import type { ClientOwnership } from '@proj/mqtt'
import { openStore, type Store } from '@proj/storage'
import type { ServerConfig } from './config-schema.js'
import type { Logger } from './logger.js'

/** The cluster options the config's `cluster.*` keys describe (undefined: a single node). */
export function clusterOptions(config: ServerConfig, logger: Logger): ClusterOptions | undefined {
  const c = config.cluster
  if (c.nats.servers === null) return undefined
  const options: ClusterOptions = {
    servers: c.nats.servers
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
    replicas: c.replicas,
    ack: c.ack,
    prefix: c.prefix,
    writeTimeoutMs: c.writeTimeout,
    applyTimeoutMs: c.applyTimeout,
    outboxLimit: c.outboxLimit,
    maxAgeMs: config.changeLog.retention,
    log: logger.child({ component: 'cluster' }),
  }
  if (c.nodeName !== null) options.nodeName = c.nodeName
  if (c.nats.user !== null) options.user = c.nats.user
  if (c.nats.password !== null) options.password = c.nats.password
  if (c.nats.token !== null) options.token = c.nats.token
  if (c.nats.credentials !== null) options.credentials = c.nats.credentials
  const { ca, certificate, privateKey } = c.nats.tls
  if (ca !== null || certificate !== null) {
    options.tls = {}
    if (ca !== null) options.tls.caFile = ca
    if (certificate !== null) options.tls.certFile = certificate
    if (privateKey !== null) options.tls.keyFile = privateKey
  }
  return options
}

/** Joins the cluster and opens the store with its replicator (the runtime then opens on that store). */
export async function openClusterStore(
  config: ServerConfig,
  options: ClusterOptions,
  logger: Logger,
): Promise<{ node: ClusterNode; store: Store }> {
  // Loaded only here: a single node never loads the cluster package and its NATS client (+3 MB RSS idle).
  const { joinCluster } = await import('@proj/cluster')
  const node = await joinCluster(options)
  logger.info({ node: node.nodeName, nodeId: node.nodeId, servers: options.servers }, 'cluster: joined')
  try {
    const store = await openStore({
      path: config.storage.path,
      nodeId: node.nodeId,
      replicator: node.replicator,
      retention: {
        maxAgeMs: config.changeLog.retention,
        ...(config.changeLog.maxEvents !== null ? { maxEvents: config.changeLog.maxEvents } : {}),
      },
      compactionIntervalMs: config.changeLog.compactionInterval,
      onError: (err: unknown) => logger.error({ err }, 'storage error'),
    })
    return { node, store }
  } catch (error) {
    await node.close()
    throw error
  }
}

/** What a request refused while the node catches up is told (seconds, HTTP Retry-After). */
const CATCHING_UP_RETRY_AFTER_S = 5

/** How `ready` went within `timeoutMs`: `ready`, `failed` (the node will not serve) or `timeout`. */
function readyWithin(ready: Promise<unknown>, timeoutMs: number): Promise<'ready' | 'failed' | 'timeout'> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    ready.then(
      () => 'ready' as const,
      () => 'failed' as const,
    ),
    new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs)
    }),
  ]).finally(() => clearTimeout(timer))
}

/**
 * An HTTP handler that holds every request and upgrade (but `GET /health`) until `ready` settles, so a
 * node that is catching up never serves a read older than what the cluster acknowledged; one held
 * longer than `timeoutMs` gets 503 with Retry-After (logged), so no client waits without a bound. A node
 * that failed (`ready` rejected, or state `failed`: it cannot apply the stream) answers 503 from then on:
 * its data is stale.
 */
export function gateHttp(
  handler: HttpHandler,
  state: () => 'serving' | 'waiting' | 'failed',
  ready: Promise<unknown>,
  timeoutMs: number,
  logger: Logger,
): HttpHandler {
  const refusal = (req: IncomingMessage, outcome: 'failed' | 'timeout') => {
    if (outcome === 'timeout')
      logger.warn(
        { method: req.method, url: req.url?.split('?')[0], ms: timeoutMs },
        'cluster: a request waited too long for this node to catch up; refused (503)',
      )
    return outcome === 'timeout'
      ? {
          message: `this node is catching up with the cluster; try again in ${CATCHING_UP_RETRY_AFTER_S} s or on another node`,
          headers: { 'Retry-After': String(CATCHING_UP_RETRY_AFTER_S) },
        }
      : {
          message: 'this node could not catch up with the cluster (see its log); use another node',
          headers: {},
        }
  }
  const handleRequest = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const now = state()
    if (now === 'serving' || (req.method === 'GET' && req.url?.split('?')[0] === '/health'))
      return handler.handleRequest(req, res)
    const outcome = now === 'failed' ? 'failed' : await readyWithin(ready, timeoutMs)
    if (outcome === 'ready') return handler.handleRequest(req, res)
    const { message, headers } = refusal(req, outcome)
    if (res.headersSent || res.destroyed) return
    res.writeHead(503, { 'Content-Type': 'application/json', ...headers })
    res.end(JSON.stringify({ error: 'UNAVAILABLE', message, status: 503 }))
  }
  const handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const now = state()
    if (now === 'serving') {
      handler.handleUpgrade(req, socket, head)
      return
    }
    const outcome = now === 'failed' ? Promise.resolve('failed' as const) : readyWithin(ready, timeoutMs)
    void outcome.then((outcome) => {
      if (outcome === 'ready') {
        handler.handleUpgrade(req, socket, head)
        return
      }
      const { headers } = refusal(req, outcome)
      const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`)
      if (!socket.destroyed)
        socket.end(
          `HTTP/1.1 503 Service Unavailable\r\n${extra.join('')}Connection: close\r\nContent-Length: 0\r\n\r\n`,
        )
    })
  }
  return {
    handleRequest,
    handleUpgrade,
    attach(server) {
      server.on('request', (req, res) => void handleRequest(req, res))
      server.on('upgrade', handleUpgrade)
    },
    close: () => handler.close(),
    stats: handler.stats,
  }
}

/**
 * The broker's view of client-id ownership: restoring waits until the node caught up (`ready`) and the
 * owners are loaded, so a node restores only the sessions and wills it serves, as the cluster left them.
 */
export function brokerOwnership(node: ClusterNode, ready: Promise<void>): ClientOwnership {
  const owners = node.ownership
  return {
    ready: Promise.all([ready, owners.ready]).then(() => {}),
    owns: (clientId) => owners.owns(clientId),
    acquire: (clientId) => owners.acquire(clientId),
    forget: (clientId) => owners.forget(clientId),
  }
}
