/**
 * The Prometheus registry: the only place that knows prom-client. The broker, the storage and the
 * listeners keep plain numbers (or call back once per commit); this module reads them when scraped,
 * through collect callbacks, so nothing on the message path touches a metrics object.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { HttpError, type HttpStats, requestUser } from '@proj/http'
import { type Broker, DOORS } from '@proj/mqtt'
import { type ResourceRuntime, TOPICS_TABLE } from '@proj/resource'
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { RefusalSummary } from './admission-log.js'
import type { TrackedListener } from './listeners.js'
import type { RecordCounts } from './record-counts.js'

export interface MetricsSources {
  runtime: ResourceRuntime
  broker: Broker
  /** The listeners, read at scrape time (they are added while the server starts). */
  listeners: () => readonly TrackedListener[]
  counts: RecordCounts
  /** Connections refused by the per-address limits. */
  refusals?: RefusalSummary
  /** The HTTP handler's counters, read at scrape time (the handler is made after the registry). */
  http?: () => HttpStats | undefined
}

export interface Metrics {
  readonly registry: Registry
  /** Stops the commit observer and the default metrics' timers. */
  close(): void
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
const QOS = ['0', '1', '2'] as const
const DROP_REASONS = {
  queueFull: 'queue_full',
  expired: 'expired',
  refused: 'refused',
  slowReader: 'slow_reader',
  tooLarge: 'too_large',
} as const

/**
 * Creates the registry with every metric of the server (names start with `proj_`) plus prom-client's
 * default process metrics (event-loop lag, GC pauses, memory, CPU).
 */
export function createMetrics(sources: MetricsSources): Metrics {
  const { runtime, broker, counts } = sources
  const registry = new Registry()
  const registers = [registry]
  collectDefaultMetrics({ register: registry, prefix: 'proj_' })

  // A snapshot of the broker's gauges is computed once per scrape and shared by the gauges below:
  // prom-client starts every collect() of one scrape in the same turn of the event loop, so the
  // snapshot is dropped at the next turn (a time window would serve a stale count to the next scrape).
  let snapshot: ReturnType<Broker['gauges']> | undefined
  const gauges = () => {
    if (snapshot === undefined) {
      snapshot = broker.gauges()
      setImmediate(() => {
        snapshot = undefined
      })
    }
    return snapshot
  }

  new Gauge({
    name: 'proj_mqtt_connections',
    help: 'Connected MQTT clients (past CONNACK) by door (tcp, tls, ws, wss) and protocol version (3, 4 = 3.1.1, 5)',
    labelNames: ['door', 'protocol'],
    registers,
    collect() {
      const byDoor = gauges().connections
      for (const door of DOORS)
        for (const version of [3, 4, 5] as const)
          this.set({ door, protocol: String(version) }, byDoor[door][version])
    },
  })
  new Gauge({
    name: 'proj_mqtt_sockets',
    help: 'Open MQTT network connections in any state (also those before CONNECT)',
    registers,
    collect() {
      this.set(gauges().sockets)
    },
  })
  counter('proj_mqtt_connects_total', 'Successful MQTT CONNECTs by door', ['door'], (set) => {
    for (const door of DOORS) set({ door }, broker.stats.doors[door].connects)
  })
  counter(
    'proj_mqtt_auth_failures_total',
    'MQTT CONNECTs refused for their credentials (bad password, unknown user, anonymous refused, failed AUTH)',
    [],
    (set) => set({}, broker.stats.authFailures),
  )
  counter(
    'proj_mqtt_messages_received_total',
    'PUBLISH packets received by door and QoS',
    ['door', 'qos'],
    (set) => {
      for (const door of DOORS)
        for (const qos of QOS) set({ door, qos }, broker.stats.doors[door].messagesIn[Number(qos)]!)
    },
  )
  counter(
    'proj_mqtt_messages_sent_total',
    'PUBLISH packets sent (first transmissions) by door and QoS',
    ['door', 'qos'],
    (set) => {
      for (const door of DOORS)
        for (const qos of QOS) set({ door, qos }, broker.stats.doors[door].messagesOut[Number(qos)]!)
    },
  )
  counter(
    'proj_mqtt_messages_dropped_total',
    'Messages dropped: queue_full (session queue at mqtt.maxQueued), expired (Message Expiry Interval), refused (inbound publish the runtime refused), slow_reader (QoS 0 to a subscriber that does not read), too_large (over the client Maximum Packet Size)',
    ['reason'],
    (set) => {
      const dropped = broker.stats.dropped
      for (const [key, reason] of Object.entries(DROP_REASONS))
        set({ reason }, dropped[key as keyof typeof DROP_REASONS])
    },
  )
  counter(
    'proj_network_received_bytes_total',
    'Bytes received by listener (mqtt, mqtts, http, https; MQTT over WebSocket counts under http/https)',
    ['listener'],
    (set) => {
      for (const l of sources.listeners()) set({ listener: l.name }, l.bytes().read)
    },
  )
  counter('proj_network_sent_bytes_total', 'Bytes sent by listener', ['listener'], (set) => {
    for (const l of sources.listeners()) set({ listener: l.name }, l.bytes().written)
  })
  gauge(
    'proj_mqtt_sessions',
    'MQTT sessions kept (connected and durable ones whose client is away)',
    () => gauges().sessions,
  )
  gauge(
    'proj_mqtt_durable_sessions',
    'MQTT sessions that outlive their connection',
    () => gauges().durableSessions,
  )
  gauge('proj_mqtt_subscriptions', 'Subscriptions of MQTT sessions', () => gauges().subscriptions)
  gauge(
    'proj_subscriptions',
    'Live runtime subscriptions from every door (MQTT, WebSocket, SSE, resources)',
    () => runtime.subscriptionCount,
  )
  gauge(
    'proj_mqtt_inflight_messages',
    'Outbound QoS 1/2 messages sent and not yet acknowledged, all sessions',
    () => gauges().inflight,
  )
  gauge(
    'proj_mqtt_queued_messages',
    'Outbound messages queued behind full in-flight windows, all sessions',
    () => gauges().queued,
  )
  gauge(
    'proj_mqtt_queued_messages_max',
    'The longest outbound queue of any one session',
    () => gauges().maxQueued,
  )
  gauge('proj_retained_topics', 'Retained messages on topics no table claims', () =>
    counts.count(TOPICS_TABLE),
  )
  new Gauge({
    name: 'proj_table_records',
    help: 'Records per table (counted at most every few seconds)',
    labelNames: ['table'],
    registers,
    collect() {
      for (const t of runtime.schema.tables) this.set({ table: t.name }, counts.count(t.storageName))
    },
  })
  gauge(
    'proj_changelog_events',
    'Events kept in the change log (for session catch-up and SSE resume)',
    () => {
      const log = runtime.storage.log
      const first = log.firstCursor
      return first > 0 && log.lastCursor >= first ? log.lastCursor - first + 1 : 0
    },
  )

  httpMetrics(sources, broker, { counter, registers })

  const refusals = sources.refusals
  if (refusals) {
    counter(
      'proj_connections_refused_total',
      'Connections reset at accept by the per-address limits, by listener and reason (rate, concurrent)',
      ['listener', 'reason'],
      (set) => {
        for (const [listener, t] of refusals.totals) {
          set({ listener, reason: 'rate' }, t.rate)
          set({ listener, reason: 'concurrent' }, t.concurrent)
        }
      },
    )
  }

  const batch = new Histogram({
    name: 'proj_storage_commit_writes',
    help: 'Writes per LMDB commit (batch size)',
    buckets: BATCH_BUCKETS,
    registers,
  })
  const commit = new Histogram({
    name: 'proj_storage_commit_seconds',
    help: 'From a batch being queued to its LMDB transaction committed',
    buckets: LATENCY_BUCKETS,
    registers,
  })
  const fsync = new Histogram({
    name: 'proj_storage_fsync_seconds',
    help: 'From an LMDB commit to its data flushed to disk (0 when storage does not sync)',
    buckets: LATENCY_BUCKETS,
    registers,
  })
  const stopObserving = runtime.storage.onCommit((s) => {
    batch.observe(s.writes)
    commit.observe(s.commitMs / 1000)
    fsync.observe(s.syncMs / 1000)
  })

  function counter(...[name, help, labelNames, read]: Parameters<CounterFactory>): void {
    new Counter({
      name,
      help,
      labelNames,
      registers,
      collect() {
        // The broker owns the running totals; each scrape copies them.
        this.reset()
        read((labels, value) => this.inc(labels, value))
      },
    })
  }

  function gauge(name: string, help: string, read: () => number): void {
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read())
      },
    })
  }

  return {
    registry,
    close() {
      stopObserving()
      registry.clear()
    },
  }
}

type CounterFactory = (
  name: string,
  help: string,
  labelNames: string[],
  read: (set: (labels: Record<string, string>, value: number) => void) => void,
) => void

/** Who may read `/metrics`: `open` (anyone, no credentials), else super users and users of this role. */
export type MetricsAccess = 'open' | (string & {})

/**
 * `GET /metrics`: the Prometheus text format, or the same registry as JSON with
 * `Accept: application/json` (what the Studio's charts read).
 */
export function metricsRoute(registry: Registry, runtime: ResourceRuntime, access: MetricsAccess) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (access !== 'open') {
      const user = await requestUser(runtime, req)
      if (user === null || user === runtime.anonymous()) {
        res.setHeader('WWW-Authenticate', 'Basic realm="proj", charset="UTF-8"')
        throw new HttpError('UNAUTHORIZED', 'the metrics need credentials')
      }
      if (!runtime.isSuperUser(user) && user.role !== access) {
        throw new HttpError('FORBIDDEN', `${user.username} may not read the metrics`)
      }
    }
    const json = /\bapplication\/json\b/i.test(req.headers.accept ?? '')
    const body = json ? JSON.stringify(await registry.getMetricsAsJSON()) : await registry.metrics()
    res.writeHead(200, {
      'Content-Type': json ? 'application/json; charset=utf-8' : registry.contentType,
      'Cache-Control': 'no-store',
      'Content-Length': Buffer.byteLength(body),
    })
    res.end(body)
  }
}

const STREAM_DOORS = ['ws', 'sse'] as const
const HTTP_DOORS = ['rest', 'login', 'ws', 'sse'] as const

/**
 * The HTTP doors' figures, read from the handler's counters like the broker's: record WebSockets and SSE
 * streams open and opened, 401s by door (with MQTT's refused CONNECTs in the same family), messages in
 * (REST writes, WebSocket client messages) and out (WebSocket envelopes, SSE frames).
 */
function httpMetrics(
  sources: MetricsSources,
  broker: Broker,
  { counter, registers }: { counter: CounterFactory; registers: Registry[] },
): void {
  const stats = () => sources.http?.()
  new Gauge({
    name: 'proj_http_connections',
    help: 'Open record WebSockets (ws) and SSE streams (sse); MQTT over WebSocket is in proj_mqtt_connections',
    labelNames: ['door'],
    registers,
    collect() {
      const s = stats()
      for (const door of STREAM_DOORS) this.set({ door }, s?.open[door] ?? 0)
    },
  })
  counter(
    'proj_http_connects_total',
    'Record WebSockets and SSE streams opened, by door',
    ['door'],
    (set) => {
      const s = stats()
      for (const door of STREAM_DOORS) set({ door }, s?.opened[door] ?? 0)
    },
  )
  counter(
    'proj_auth_failures_total',
    'Authentication failures by door: mqtt (refused CONNECTs, as proj_mqtt_auth_failures_total), and 401 answers of rest (REST and other HTTP routes), login (POST /login), ws (record WebSocket upgrades) and sse (event streams)',
    ['door'],
    (set) => {
      set({ door: 'mqtt' }, broker.stats.authFailures)
      const s = stats()
      for (const door of HTTP_DOORS) set({ door }, s?.authFailures[door] ?? 0)
    },
  )
  counter(
    'proj_http_messages_received_total',
    'Messages received over HTTP: rest (authenticated PUT, PATCH, POST and DELETE requests) and ws (record WebSocket client messages)',
    ['door'],
    (set) => {
      const s = stats()
      set({ door: 'rest' }, s?.messagesIn.rest ?? 0)
      set({ door: 'ws' }, s?.messagesIn.ws ?? 0)
    },
  )
  counter(
    'proj_http_messages_sent_total',
    'Events sent over HTTP: ws (record WebSocket envelopes) and sse (event stream frames)',
    ['door'],
    (set) => {
      const s = stats()
      for (const door of STREAM_DOORS) set({ door }, s?.messagesOut[door] ?? 0)
    },
  )
}
