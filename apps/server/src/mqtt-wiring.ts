import type { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { type Broker, type BrokerOptions, createBroker } from '@proj/mqtt'
import type { ResourceRuntime } from '@proj/resource'
import type { ServerConfig } from './config-schema.js'
import type { Logger } from './logger.js'
import { certificateUser, isTlsSocket } from './tls.js'

const BROKER_EVENTS = ['connection', 'connected', 'auth-failed', 'disconnected', 'publish-refused'] as const

/** The broker the config describes; its events are logged (debug) and forwarded to `server.mqtt.events`. */
export function createConfiguredBroker(
  config: ServerConfig,
  runtime: ResourceRuntime,
  logger: Logger,
  events: EventEmitter,
  /** A cluster node's client-id ownership. */
  cluster: Pick<BrokerOptions, 'ownership'> = {},
): Broker {
  const broker = createBroker({
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
    ...cluster,
  })
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
  return broker
}

/** Takes one MQTT stream from any door; `accept` is a WebSocket upgrade's Accept header. */
export type MqttEntry = (
  stream: Duplex,
  transport: 'tcp' | 'tls' | 'ws' | 'wss',
  socket: Socket,
  accept?: string,
) => void

/**
 * Hands each MQTT stream to the broker with its door, address and (mTLS) certificate user. Until the
 * node serves (a cluster node catching up), streams wait for `ready` (at most `wait.timeoutMs`, then
 * closed and logged: the client connects again, here or elsewhere), and are dropped if it fails.
 */
export function mqttEntry(
  broker: Broker,
  mtls: ServerConfig['mqtt']['mTLS'],
  serving: () => boolean,
  ready: Promise<void>,
  wait?: { timeoutMs: number; logger: Logger },
): MqttEntry {
  const handle: MqttEntry = (stream, transport, socket, accept) => {
    if (!serving()) {
      let timer: NodeJS.Timeout | undefined
      if (wait !== undefined)
        timer = setTimeout(() => {
          wait.logger.warn(
            { transport, remoteAddress: socket.remoteAddress, ms: wait.timeoutMs },
            'cluster: an MQTT connection waited too long for this node to catch up; closed',
          )
          stream.destroy()
        }, wait.timeoutMs)
      void ready.then(
        () => {
          clearTimeout(timer)
          if (!stream.destroyed) handle(stream, transport, socket, accept)
        },
        () => {
          clearTimeout(timer)
          // the node failed: served only to be refused (CONNACK 0x88), when it says so
          if (serving() && !stream.destroyed) handle(stream, transport, socket, accept)
          else stream.destroy()
        },
      )
      return
    }
    const user = isTlsSocket(socket) && mtls.enabled ? certificateUser(socket, mtls.user) : undefined
    broker.handle(stream, {
      transport,
      remoteAddress: socket.remoteAddress,
      remotePort: socket.remotePort,
      ...(user ? { certificateUser: user } : {}),
      // MQTT over WebSocket: the upgrade request's Accept picks the connection's record format.
      ...(accept !== undefined ? { accept } : {}),
    })
  }
  return handle
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
