import { EventEmitter } from 'node:events'
import { createServer as createNetServer, type Socket } from 'node:net'
import type { ClusterNode } from '@proj/cluster'
import type { HttpHandler, RouteHandler, SubprotocolHandler } from '@proj/http'
import type { Broker } from '@proj/mqtt'
import type { ResourceRuntime } from '@proj/resource'
import type { Store } from '@proj/storage'
import { ConnectionAdmission } from './admission.js'
import { RefusalSummary } from './admission-log.js'
import { mqttFollowsClusterState } from './cluster-mqtt.js'
import { brokerOwnership, clusterOptions, gateHttp, openClusterStore } from './cluster-node.js'
import { openConfiguredRuntime, roleDefinitions } from './configured-runtime.js'
import { ensureAdmin, ignoredAdminPassword } from './first-admin.js'
import { TrackedListener } from './listeners.js'
import { createLogger } from './logger.js'
import type { Metrics } from './metrics.js'
import { createConfiguredBroker, mqttEntry } from './mqtt-wiring.js'
import { createRecordCounts } from './record-counts.js'
import { RefusalLog } from './refusal-log.js'
import { applyReload, type SecureListener } from './reload.js'
import type { Server, StartServerOptions } from './server-types.js'
import { type SysTopics, startSysTopics } from './sys-topics.js'
import { isTlsSocket, loadTlsMaterial, serverTlsOptions } from './tls.js'
import { VERSION } from './version.js'

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

    broker = createConfiguredBroker(
      config,
      runtime,
      logger,
      events,
      cluster !== undefined ? { ownership: brokerOwnership(cluster, ready) } : {},
    )
    cluster?.ownership.attach(broker)
    if (cluster !== undefined) mqttFollowsClusterState(cluster, broker, logger)
    const refusals = new RefusalLog(logger)
    refusals.watchBroker(broker.events)

    const tlsMaterial = await loadTlsMaterial(config.tls)
    const mtls = config.mqtt.mTLS

    // a failed node hands each MQTT stream to the broker, which refuses its CONNECT (0x88 / 3)
    const handleMqtt = mqttEntry(broker, mtls, () => serving || cluster?.state === 'failed', ready, {
      timeoutMs: config.cluster.catchUpTimeout,
      logger,
    })

    const subprotocols: Record<string, SubprotocolHandler> = {}
    if (config.mqtt.webSocket) {
      subprotocols.mqtt = (stream, req) =>
        handleMqtt(stream, isTlsSocket(req.socket) ? 'wss' : 'ws', req.socket as Socket, req.headers.accept)
    }
    const counts = createRecordCounts(runtime)
    const servesHttp = config.http.port !== null || config.http.securePort !== null
    if (servesHttp) {
      // Loaded only when served (http-wiring.ts): no HTTP listener, no HTTP code in memory.
      const web = await import('./http-wiring.js')
      const extraRoutes: Record<string, RouteHandler> = {
        'GET /health': web.healthRoute(
          () => closing !== undefined,
          () => cluster,
        ),
      }
      if (config.metrics.enabled) {
        // prom-client and its default collectors cost memory and a GC observer: loaded only when served too
        const { createMetrics, metricsRoute } = await import('./metrics.js')
        metrics = createMetrics({
          runtime,
          broker,
          listeners: () => listeners,
          counts,
          refusals: admissionRefusals,
          http: () => handler?.stats,
        })
        extraRoutes['GET /metrics'] = metricsRoute(metrics.registry, runtime, config.metrics.access)
      }
      if (config.studio.enabled) {
        extraRoutes[`${web.ADMIN_PREFIX}*`] = web.adminApi({
          runtime,
          broker,
          counts,
          maxBodySize: config.http.maxBodySize,
        })
        const assets = web.findStudioAssets()
        if (!assets) logger.warn('the Studio is not built (run `pnpm build`): /studio/ answers 503')
        extraRoutes[`${web.STUDIO_PREFIX}*`] = web.studioRoute(assets)
        extraRoutes['GET /'] = web.rootRedirect()
      }
      // a table whose path an HTTP route shadows is refused only where there is HTTP to shadow it
      web.refuseReservedPaths(runtime, extraRoutes)
      handler = web.createHttpHandler({
        runtime,
        ...(config.http.cors ? { cors: { origins: config.http.cors } } : {}),
        ...(config.http.streamOrigins !== null ? { streamOrigins: config.http.streamOrigins || [] } : {}),
        maxBodySize: config.http.maxBodySize,
        subprotocols,
        extraRoutes,
        onError: (err, req) => logger.error({ err, method: req.method, url: req.url }, 'request failed'),
      })
      const node = cluster
      if (node !== undefined)
        handler = gateHttp(
          handler,
          () => (node.state === 'failed' ? 'failed' : serving ? 'serving' : 'waiting'),
          ready,
          config.cluster.catchUpTimeout,
          logger,
        )
    }
    const httpServices = ['rest', 'ws', 'sse', ...(config.mqtt.webSocket ? ['mqtt-ws'] : [])]

    if (config.mqtt.network.port !== null) {
      // Nagle off: set by the server on each accepted handle (no setNoDelay call per socket)
      const tcp = createNetServer({ noDelay: true }, (socket) => handleMqtt(socket, 'tcp', socket))
      listeners.push(new TrackedListener('mqtt', 'mqtt.network.port', tcp, ['mqtt']))
    }
    // node:tls, node:http and node:https are loaded only for the listeners that use them (1.7 MB of RSS)
    if (config.mqtt.network.securePort !== null && tlsMaterial) {
      const { createServer: createTlsServer } = await import('node:tls')
      const tlsServer = createTlsServer(
        {
          ...serverTlsOptions(tlsMaterial, { requestCert: mtls.enabled, required: mtls.required }),
          noDelay: true,
        },
        (socket) => handleMqtt(socket, 'tls', socket),
      )
      tlsServer.on('tlsClientError', (err, socket) =>
        logger.debug({ err, remoteAddress: socket.remoteAddress }, 'mqtts handshake failed'),
      )
      secure.push({ server: tlsServer, requestCert: mtls.enabled, required: mtls.required })
      listeners.push(new TrackedListener('mqtts', 'mqtt.network.securePort', tlsServer, ['mqtt']))
    }
    if (config.http.port !== null && handler) {
      const { createServer: createHttpServer } = await import('node:http')
      const http = createHttpServer()
      handler.attach(http)
      refusals.watchHttp(http)
      listeners.push(new TrackedListener('http', 'http.port', http, httpServices))
    }
    if (config.http.securePort !== null && handler && tlsMaterial) {
      // Certificates are asked for (never required) so MQTT over WSS can name its user; REST clients need none.
      const { createServer: createHttpsServer } = await import('node:https')
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
