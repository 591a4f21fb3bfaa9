import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdir, readdir } from 'node:fs/promises'
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { createServer as createNetServer, type Socket } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import type { Duplex } from 'node:stream'
import { createServer as createTlsServer, TLSSocket } from 'node:tls'
import { fileURLToPath } from 'node:url'
import type { ClusterNode } from '@proj/cluster'
import { createHttpHandler, type HttpHandler, type RouteHandler, type SubprotocolHandler } from '@proj/http'
import { type Broker, createBroker } from '@proj/mqtt'
import {
  type AuthFailure,
  openRuntime,
  type ResourceRuntime,
  type RoleDefinition,
  type RuntimeOptions,
} from '@proj/resource'
import type { Store } from '@proj/storage'
import { ADMIN_PREFIX, adminApi } from './admin-api.js'
import { ConnectionAdmission } from './admission.js'
import { RefusalSummary } from './admission-log.js'
import { reportApplications } from './application-report.js'
import { brokerOwnership, clusterOptions, gateHttp, openClusterStore } from './cluster-node.js'
import type { ServerConfig } from './config-schema.js'
import { ConfigError } from './errors.js'
import { type ListenerInfo, TrackedListener } from './listeners.js'
import { createLogger, type Logger } from './logger.js'
import { createMetrics, type Metrics, metricsRoute } from './metrics.js'
import { createRecordCounts } from './record-counts.js'
import { RefusalLog } from './refusal-log.js'
import { applyReload, type ReloadOutcome, type SecureListener } from './reload.js'
import { findStudioAssets, rootRedirect, STUDIO_PREFIX, studioRoute } from './studio-assets.js'
import { type SysTopics, startSysTopics } from './sys-topics.js'
import { certificateUser, loadTlsMaterial, serverTlsOptions } from './tls.js'
import { VERSION } from './version.js'

/** The built-in application (a `Dog` table), used when the applications folder does not exist. */
export const DEFAULT_APPLICATION = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'default-app')

export interface StartServerOptions {
  config: ServerConfig
  /** The root folder the config's relative paths were resolved against. */
  root: string
  logger?: Logger
  /** Source of ADMIN_USERNAME / ADMIN_PASSWORD for the first admin. Default `process.env`. */
  env?: Record<string, string | undefined>
  /** Told once when the first admin is created (the CLI prints a generated password there). */
  onAdminCreated?: (admin: { username: string; password: string; generated: boolean }) => void
  /** Told when ADMIN_PASSWORD is set but changes nothing (the store has its admin already): why, and the fix. */
  onAdminPasswordIgnored?: (warning: string) => void
}

/**
 * What application modules receive as `server`, and what `startServer` returns.
 * `mqtt.events` emits the broker's `connection`, `connected`, `auth-failed`, `disconnected` and
 * `publish-refused` events
 * and exists before applications load, so `resources.js` can subscribe at import time.
 */
export interface Server {
  readonly config: ServerConfig
  readonly root: string
  readonly logger: Logger
  readonly mqtt: { readonly events: EventEmitter; readonly broker: Broker | undefined }
  readonly http: { readonly handler: HttpHandler | undefined }
  readonly runtime: ResourceRuntime
  /** Where the server listens, once started. */
  readonly listeners: readonly ListenerInfo[]
  /** Graceful stop: stop accepting, let in-flight work finish (up to shutdown.timeout), persist wills, close LMDB. */
  close(): Promise<void>
  /**
   * Applies a new configuration's TLS files, roles and anonymous settings without dropping a connection
   * (SIGHUP). Rejects, changing nothing, when any of it is unusable; names changed keys that need a restart.
   */
  reload(next: ServerConfig): Promise<ReloadOutcome>
}

/** Sub-folders of the applications folder, or the built-in default application when it does not exist. */
export async function applicationFolders(path: string): Promise<{ folders: string[]; builtIn: boolean }> {
  if (!existsSync(path)) return { folders: [DEFAULT_APPLICATION], builtIn: true }
  const entries = await readdir(path, { withFileTypes: true })
  const folders = entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.') && e.name !== 'node_modules')
    .map((e) => join(path, e.name))
    .sort()
  return { folders, builtIn: false }
}

/** Role definitions from the config mapping (`roles: { reader: { tables: … } }`) as the runtime takes them. */
function roleDefinitions(roles: Record<string, unknown>): RoleDefinition[] {
  return Object.entries(roles).map(([name, definition]) => ({ ...(definition as object), name }))
}

/**
 * Opens the resource runtime the config describes (storage, applications, roles, retention).
 * Used by `startServer` and by the CLI's `user` commands.
 */
export async function openConfiguredRuntime(
  config: ServerConfig,
  options: {
    server?: Server
    logger?: Logger
    root?: string
    store?: Store
    relay?: RuntimeOptions['relay']
    shared?: RuntimeOptions['shared']
  } = {},
): Promise<ResourceRuntime> {
  await mkdir(config.storage.path, { recursive: true })
  const { folders, builtIn } = await applicationFolders(config.applications.path)
  if (builtIn) {
    options.logger?.info(
      { applications: config.applications.path },
      'no applications folder; using the built-in default application (table Dog)',
    )
  }
  const logger = options.logger
  // failed passwords, rate-limited: a client retrying in a loop cannot flood the log
  const refusals = logger ? new RefusalLog(logger) : undefined
  // Outside `start` (the CLI's user commands) applications still load, so they get a server that never
  // listens: same shape, no listeners, events that never fire.
  let opened: ResourceRuntime | undefined
  const server =
    options.server ??
    offlineServer(
      config,
      options.root ?? process.cwd(),
      logger ?? createLogger({ level: 'silent', format: 'json' }),
      () => {
        if (!opened) throw new Error('the runtime is not open yet')
        return opened
      },
    )
  opened = await openRuntime({
    path: config.storage.path,
    ...(options.store !== undefined ? { store: options.store } : {}),
    ...(options.relay !== undefined ? { relay: options.relay } : {}),
    ...(options.shared !== undefined ? { shared: options.shared } : {}),
    applications: folders,
    allowAnonymous: config.anonymous.enabled,
    anonymousRole: config.anonymous.role,
    roles: roleDefinitions(config.roles),
    rejectUnclaimedTopics: config.mqtt.rejectUnclaimedTopics,
    retention: {
      maxAgeMs: config.changeLog.retention,
      ...(config.changeLog.maxEvents !== null ? { maxEvents: config.changeLog.maxEvents } : {}),
    },
    compactionIntervalMs: config.changeLog.compactionInterval,
    ...(logger ? { onError: (err: unknown) => logger.error({ err }, 'runtime error') } : {}),
    auth: {
      scramIterations: config.auth.scramIterations,
      scryptCost: config.auth.scryptCost,
      maxFailuresPerUser: config.auth.backoff.maxFailuresPerUser,
      maxFailuresPerAddress: config.auth.backoff.maxFailuresPerAddress,
      maxBackoffMs: config.auth.backoff.maxDelay,
      cacheTtlMs: config.auth.cacheTtl,
      ...(logger
        ? {
            onFailure: (failure: AuthFailure) => refusals?.authFailure(failure),
          }
        : {}),
    },
    // resources.js default exports receive this as `kit.context`
    context: { server },
  })
  if (logger) {
    reportApplications(
      opened,
      {
        folders,
        builtIn,
        applicationsPath: config.applications.path,
        storagePath: config.storage.path,
      },
      logger,
    )
  }
  return opened
}

function offlineServer(
  config: ServerConfig,
  root: string,
  logger: Logger,
  runtime: () => ResourceRuntime,
): Server {
  return {
    config,
    root,
    logger,
    mqtt: { events: new EventEmitter(), broker: undefined },
    http: { handler: undefined },
    get runtime() {
      return runtime()
    },
    listeners: [],
    close: async () => {},
    reload: async () => {
      throw new Error('this server does not listen: nothing to reload')
    },
  }
}

/**
 * Creates the first admin when no super user exists yet (a fresh store, or users added with the CLI before
 * the first start): ADMIN_USERNAME (default `admin`) with ADMIN_PASSWORD, or a generated password.
 */
export async function ensureAdmin(
  runtime: ResourceRuntime,
  env: Record<string, string | undefined>,
): Promise<{ username: string; password: string; generated: boolean } | undefined> {
  const users = runtime.users.list()
  const username = env.ADMIN_USERNAME || 'admin'
  if (users.some((u) => u.superUser || u.username === username)) return undefined
  const generated = !env.ADMIN_PASSWORD
  const password = env.ADMIN_PASSWORD || randomBytes(15).toString('base64url')
  await runtime.users.add(username, password, { superUser: true })
  return { username, password, generated }
}

/**
 * ADMIN_USERNAME / ADMIN_PASSWORD only act when the first admin is created. Set on a later start, they
 * would be silently ignored and every request with that password answered 401: this says so instead,
 * with the command that changes the password. Undefined when they agree with the store (or are unset).
 */
async function ignoredAdminPassword(
  runtime: ResourceRuntime,
  env: Record<string, string | undefined>,
): Promise<string | undefined> {
  if (!env.ADMIN_PASSWORD) return undefined
  const username = env.ADMIN_USERNAME || 'admin'
  const users = runtime.users.list()
  if (users.some((u) => u.username === username)) {
    if (await runtime.users.checkPassword(username, env.ADMIN_PASSWORD)) return undefined
    return (
      `ADMIN_PASSWORD is ignored: user '${username}' already exists with another password ` +
      '(ADMIN_PASSWORD only sets the password when the first start creates the admin). ' +
      `To change it: proj-server user passwd ${username} (from the repository: node apps/server/dist/cli.js user passwd ${username})`
    )
  }
  const supers = users.filter((u) => u.superUser).map((u) => u.username)
  return (
    `ADMIN_USERNAME/ADMIN_PASSWORD are ignored: there is no user '${username}', and the store has its super user(s) already (${supers.join(', ')}). ` +
    `To add it: proj-server user add ${username} --super-user`
  )
}

function healthRoute(isClosing: () => boolean, cluster: () => ClusterNode | undefined) {
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

const BROKER_EVENTS = ['connection', 'connected', 'auth-failed', 'disconnected', 'publish-refused'] as const

/**
 * Opens the runtime, creates the broker and the HTTP handler, and starts every configured listener.
 *
 * @example
 * const { config, root } = await loadConfig({ root: '/srv/proj' })
 * const server = await startServer({ config, root })
 * console.log(server.listeners.map((l) => l.url))
 * await server.close()
 */
export async function startServer(options: StartServerOptions): Promise<Server> {
  const { config, root } = options
  const logger = options.logger ?? createLogger(config.logging)
  const events = new EventEmitter()
  const listeners: TrackedListener[] = []
  let runtime: ResourceRuntime | undefined
  let broker: Broker | undefined
  let handler: HttpHandler | undefined
  let metrics: Metrics | undefined
  let sys: SysTopics | undefined
  let closing: Promise<void> | undefined
  let cluster: ClusterNode | undefined
  let clusterStore: Store | undefined
  const admissionRefusals = new RefusalSummary(logger)
  const admission = new ConnectionAdmission({
    maxPerAddress: config.connections.maxPerAddress,
    ratePerAddress: config.connections.ratePerAddress,
    exempt: config.connections.exempt,
    onRefused: (refusal) => admissionRefusals.note(refusal),
  })

  let current = config
  const secure: SecureListener[] = []
  const server: Server = {
    get config() {
      return current
    },
    root,
    logger,
    mqtt: {
      events,
      get broker() {
        return broker
      },
    },
    http: {
      get handler() {
        return handler
      },
    },
    get runtime() {
      if (!runtime) throw new Error('the runtime is not open yet')
      return runtime
    },
    get listeners() {
      return listeners.flatMap((l) => (l.info ? [l.info] : []))
    },
    close: () => (closing ??= shutdown()),
    async reload(next) {
      if (!runtime || closing) throw new Error('the server is not running')
      const outcome = await applyReload(current, next, {
        runtime,
        secure,
        roles: roleDefinitions(next.roles),
      })
      current = next
      logger.info(
        outcome,
        `configuration reloaded${outcome.applied.length > 0 ? ` (${outcome.applied.join(', ')})` : ' (nothing it applies changed)'}`,
      )
      if (outcome.restartNeeded.length > 0)
        logger.warn(
          { keys: outcome.restartNeeded },
          `changed keys that need a restart: ${outcome.restartNeeded.join(', ')}`,
        )
      return outcome
    },
  }

  async function shutdown(): Promise<void> {
    logger.info('shutting down')
    const sysClosed = sys?.close()
    // 1. stop accepting; open connections keep going for now
    const drained = Promise.all(listeners.map((l) => l.stopAccepting()))
    // 2. close WebSockets/SSE (1001) and MQTT clients; the broker persists sessions and wills
    await Promise.allSettled([handler?.close(), broker?.close()]).then((results) => {
      for (const r of results)
        if (r.status === 'rejected') logger.error({ err: r.reason }, 'error while closing')
    })
    // 3. in-flight HTTP requests (and their writes) may finish within the grace period
    let timer: NodeJS.Timeout | undefined
    const timedOut = await Promise.race([
      drained.then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), config.shutdown.timeout)
      }),
    ])
    clearTimeout(timer)
    if (timedOut) {
      logger.warn(
        { timeoutMs: config.shutdown.timeout },
        'closing connections still open after the shutdown timeout',
      )
      for (const l of listeners) l.destroyAll()
    }
    // 4. the store last, once nothing can write to it
    admission.close()
    admissionRefusals.close()
    metrics?.close()
    await sysClosed
    await runtime?.close()
    // the runtime does not own a cluster node's store: stop applying the stream, then close it
    await cluster?.close()
    await clusterStore?.close()
    logger.info('stopped')
  }

  try {
    const joining = clusterOptions(config, logger)
    if (joining !== undefined) {
      const opened = await openClusterStore(config, joining, logger)
      cluster = opened.node
      clusterStore = opened.store
    }
    runtime = await openConfiguredRuntime(config, {
      server,
      logger,
      ...(clusterStore !== undefined
        ? { store: clusterStore, relay: cluster!.relay.relay, shared: cluster!.shared }
        : {}),
    })
    cluster?.relay.attach(runtime)
    const openedRuntime = runtime
    const createAdmin = async () => {
      const admin = await ensureAdmin(openedRuntime, options.env ?? process.env)
      if (admin) {
        logger.info({ username: admin.username, generated: admin.generated }, 'created the first admin user')
        options.onAdminCreated?.(admin)
      } else {
        const ignored = await ignoredAdminPassword(openedRuntime, options.env ?? process.env)
        if (ignored) {
          logger.warn(ignored)
          options.onAdminPasswordIgnored?.(ignored)
        }
      }
    }
    // A cluster node serves once it has caught up with the stream (requests and MQTT connections wait);
    // only then can it tell whether the cluster already has an admin.
    let serving = cluster === undefined
    let ready: Promise<void> = Promise.resolve()
    if (cluster === undefined) await createAdmin()
    else {
      cluster.start(clusterStore!)
      ready = cluster.ready().then(createAdmin)
      ready.then(
        () => {
          serving = true
        },
        (err) => logger.error({ err }, 'cluster: this node will not serve'),
      )
    }

    broker = createBroker({
      runtime,
      maxKeepAlive: config.mqtt.maxKeepAlive,
      receiveMaximum: config.mqtt.receiveMaximum,
      maxPacketSize: config.mqtt.maxPacketSize,
      maxInflight: config.mqtt.maxInflight,
      maxQueued: config.mqtt.maxQueued,
      maxConnections: config.mqtt.maxConnections,
      maxConnectionsPerUser: config.mqtt.maxConnectionsPerUser,
      connectTimeoutMs: config.mqtt.connectTimeout,
      requireAuthentication: config.mqtt.requireAuthentication,
      refusedPublish: config.mqtt.refusedPublish,
      logger: logger.child({ component: 'mqtt' }),
      ...(cluster !== undefined ? { ownership: brokerOwnership(cluster, ready) } : {}),
    })
    cluster?.ownership.attach(broker)
    for (const name of BROKER_EVENTS) {
      broker.events.on(name, (...args: unknown[]) => {
        // Every connection fires these; skip building the summary when debug lines are dropped anyway.
        if (logger.isLevelEnabled('debug')) {
          logger.debug(
            { event: name, ...summarize(args[0]), ...summarize(args[1]), ...summarize(args[2]) },
            `mqtt ${name}`,
          )
        }
        try {
          events.emit(name, ...args)
        } catch (err) {
          // an application's listener must not break the connection that triggered it
          logger.error({ err, event: name }, 'server.mqtt.events listener failed')
        }
      })
    }
    const activeBroker = broker
    const refusals = new RefusalLog(logger)
    refusals.watchBroker(broker.events)

    const tlsMaterial = await loadTlsMaterial(config.tls)
    const mtls = config.mqtt.mTLS

    const handleMqtt = (
      stream: Duplex,
      transport: 'tcp' | 'tls' | 'ws' | 'wss',
      socket: Socket,
      accept?: string,
    ) => {
      if (!serving) {
        void ready.then(
          () => handleMqtt(stream, transport, socket, accept),
          () => stream.destroy(),
        )
        return
      }
      const user =
        socket instanceof TLSSocket && mtls.enabled ? certificateUser(socket, mtls.user) : undefined
      activeBroker.handle(stream, {
        transport,
        remoteAddress: socket.remoteAddress,
        remotePort: socket.remotePort,
        ...(user ? { certificateUser: user } : {}),
        // MQTT over WebSocket: the upgrade request's Accept picks the connection's record format.
        ...(accept !== undefined ? { accept } : {}),
      })
    }

    const subprotocols: Record<string, SubprotocolHandler> = {}
    if (config.mqtt.webSocket) {
      subprotocols.mqtt = (stream, req) =>
        handleMqtt(
          stream,
          req.socket instanceof TLSSocket ? 'wss' : 'ws',
          req.socket as Socket,
          req.headers.accept,
        )
    }
    const counts = createRecordCounts(runtime)
    const extraRoutes: Record<string, RouteHandler> = {
      'GET /health': healthRoute(
        () => closing !== undefined,
        () => cluster,
      ),
    }
    if (config.metrics.enabled) {
      metrics = createMetrics({
        runtime,
        broker,
        listeners: () => listeners,
        counts,
        refusals: admissionRefusals,
      })
      extraRoutes['GET /metrics'] = metricsRoute(metrics.registry, runtime, config.metrics.access)
    }
    if (config.studio.enabled) {
      extraRoutes[`${ADMIN_PREFIX}*`] = adminApi({
        runtime,
        broker,
        counts,
        maxBodySize: config.http.maxBodySize,
      })
      const assets = findStudioAssets()
      if (!assets) logger.warn('the Studio is not built (run `pnpm build`): /studio/ answers 503')
      extraRoutes[`${STUDIO_PREFIX}*`] = studioRoute(assets)
      extraRoutes['GET /'] = rootRedirect()
    }
    refuseReservedPaths(runtime, extraRoutes)
    if (config.http.port !== null || config.http.securePort !== null) {
      handler = createHttpHandler({
        runtime,
        ...(config.http.cors ? { cors: { origins: config.http.cors } } : {}),
        ...(config.http.streamOrigins !== null ? { streamOrigins: config.http.streamOrigins || [] } : {}),
        maxBodySize: config.http.maxBodySize,
        subprotocols,
        extraRoutes,
        onError: (err, req) => logger.error({ err, method: req.method, url: req.url }, 'request failed'),
      })
      if (cluster !== undefined) handler = gateHttp(handler, () => serving, ready)
    }
    const httpServices = ['rest', 'ws', 'sse', ...(config.mqtt.webSocket ? ['mqtt-ws'] : [])]

    if (config.mqtt.network.port !== null) {
      const tcp = createNetServer((socket) => {
        socket.setNoDelay(true)
        handleMqtt(socket, 'tcp', socket)
      })
      listeners.push(new TrackedListener('mqtt', 'mqtt.network.port', tcp, ['mqtt']))
    }
    if (config.mqtt.network.securePort !== null && tlsMaterial) {
      const tlsServer = createTlsServer(
        serverTlsOptions(tlsMaterial, { requestCert: mtls.enabled, required: mtls.required }),
        (socket) => {
          socket.setNoDelay(true)
          handleMqtt(socket, 'tls', socket)
        },
      )
      tlsServer.on('tlsClientError', (err, socket) =>
        logger.debug({ err, remoteAddress: socket.remoteAddress }, 'mqtts handshake failed'),
      )
      secure.push({ server: tlsServer, requestCert: mtls.enabled, required: mtls.required })
      listeners.push(new TrackedListener('mqtts', 'mqtt.network.securePort', tlsServer, ['mqtt']))
    }
    if (config.http.port !== null && handler) {
      const http = createHttpServer()
      handler.attach(http)
      refusals.watchHttp(http)
      listeners.push(new TrackedListener('http', 'http.port', http, httpServices))
    }
    if (config.http.securePort !== null && handler && tlsMaterial) {
      // Certificates are asked for (never required) so MQTT over WSS can name its user; REST clients need none.
      const https = createHttpsServer(
        serverTlsOptions(tlsMaterial, { requestCert: mtls.enabled, required: false }),
      )
      secure.push({ server: https, requestCert: mtls.enabled, required: false })
      handler.attach(https)
      refusals.watchHttp(https)
      listeners.push(new TrackedListener('https', 'http.securePort', https, httpServices))
    }

    const ports: Record<string, [number | null, string | null]> = {
      mqtt: [config.mqtt.network.port, config.mqtt.network.host],
      mqtts: [config.mqtt.network.securePort, config.mqtt.network.host],
      http: [config.http.port, config.http.host],
      https: [config.http.securePort, config.http.host],
    }
    for (const listener of listeners) {
      admission.guard(listener.server, listener.name)
      const [port, host] = ports[listener.name]!
      const info = await listener.listen(port!, host)
      listener.onError = (err) => logger.error({ err, listener: info.name }, 'listener error')
      logger.info(
        { listener: info.name, url: info.url, host: info.host, port: info.port },
        `listening on ${info.url}`,
      )
    }
    if (config.sys.interval > 0 && config.mqtt.rejectUnclaimedTopics) {
      logger.info('no $SYS topics: mqtt.rejectUnclaimedTopics refuses topics no table claims')
    } else if (config.sys.interval > 0 && cluster !== undefined) {
      // retained $SYS writes would replicate, and every node would overwrite the others' figures
      logger.info('no $SYS topics on a cluster node (use GET /metrics per node)')
    } else {
      sys = startSysTopics({
        runtime,
        broker,
        listeners: () => listeners,
        counts,
        intervalSeconds: config.sys.interval,
        version: VERSION,
        logger,
      })
    }
    return server
  } catch (error) {
    await server.close().catch((err) => logger.error({ err }, 'error while cleaning up a failed start'))
    throw error
  }
}

/**
 * The server's own routes (`/metrics`, `/_admin/`, `/studio/`, `/login`, `/health`) are answered before
 * records: a table exported under one of their first segments could never be reached, so the start fails
 * and says which table and how to rename it. Case-insensitively, like the router's fallback.
 */
function refuseReservedPaths(runtime: ResourceRuntime, routes: Record<string, RouteHandler>): void {
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

/** Loggable fields of a broker event argument (client id, user, address), never payloads. */
function summarize(value: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (!value || typeof value !== 'object') return out
  for (const key of ['clientId', 'username', 'remoteAddress', 'transport', 'reason']) {
    const v = (value as Record<string, unknown>)[key]
    if (v !== undefined && (typeof v !== 'object' || v === null)) out[key] = v
  }
  const user = (value as { user?: { username?: unknown } | null }).user
  if (user && typeof user.username === 'string') out.username = user.username
  return out
}
