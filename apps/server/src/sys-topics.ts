/**
 * The `$SYS/broker/...` topics, named as Mosquitto names them (its sys_tree.c), so dashboards and
 * scripts written for Mosquitto read this broker unchanged. They are retained messages on topics no
 * table claims, written by the server itself: a new subscriber gets the current values at once, and
 * who may read them is the ordinary topic rules' business (`$` topics match only rules that name
 * them, so a role needs `$SYS/#`; super users may always). The runtime keeps `$SYS` retained
 * messages in memory, out of storage and the change log: they are refreshed every few seconds and
 * worth nothing after a restart.
 *
 * The numbers come from what the broker and the listeners already count; reading them costs a pass
 * over the sessions every `sys.interval` seconds. A value is published again only when it changed
 * (the uptime always), like Mosquitto, so an idle broker publishes one value per interval.
 */
import type { Broker } from '@proj/mqtt'
import { type RequestContext, type ResourceRuntime, TOPICS_TABLE } from '@proj/resource'
import type { TrackedListener } from './listeners.js'
import type { Logger } from './logger.js'
import type { RecordCounts } from './record-counts.js'

export interface SysTopicsOptions {
  runtime: ResourceRuntime
  broker: Broker
  /** The listeners, read at each refresh: bytes are those of the MQTT listeners (mqtt, mqtts). */
  listeners: () => readonly TrackedListener[]
  counts: RecordCounts
  /** Seconds between refreshes (`sys.interval`); 0 publishes nothing. */
  intervalSeconds: number
  /** Published once as `$SYS/broker/version`. */
  version: string
  logger: Logger
}

export interface SysTopics {
  /** Stops the timer and waits for the writes under way (before the store closes). */
  close(): Promise<void>
}

/** The server writes `$SYS` as a super user of its own: no role has to allow it. */
const SYSTEM: RequestContext = {
  user: { username: '$SYS', role: 'admin', superUser: true },
  transport: 'internal',
}

/** Counters whose load averages Mosquitto publishes under `$SYS/broker/load/<name>/{1,5,15}min`. */
const LOADS = [
  'messages/received',
  'messages/sent',
  'publish/received',
  'publish/sent',
  'publish/dropped',
  'bytes/received',
  'bytes/sent',
  'connections',
] as const
type LoadName = (typeof LOADS)[number]

/** Minutes of each moving average, as in `uptime`'s load averages. */
const WINDOWS = [1, 5, 15] as const

interface Reading {
  /** Topic (under `$SYS/broker/`) → value, for the plain counters and gauges. */
  values: Map<string, number>
  /** Monotonic totals the load averages follow. */
  totals: Record<LoadName, number>
}

/** Reads every figure once; `maximumClients` is the highest total seen so far. */
function read(options: SysTopicsOptions, maximumClients: number): Reading {
  const { broker, counts, runtime } = options
  const gauges = broker.gauges()
  let connected = 0
  for (const byVersion of Object.values(gauges.connections))
    for (const n of Object.values(byVersion)) connected += n
  let received = 0
  let sent = 0
  let connects = 0
  for (const door of Object.values(broker.stats.doors)) {
    received += door.messagesIn[0] + door.messagesIn[1] + door.messagesIn[2]
    sent += door.messagesOut[0] + door.messagesOut[1] + door.messagesOut[2]
    connects += door.connects
  }
  const d = broker.stats.dropped
  const dropped = d.queueFull + d.expired + d.refused + d.slowReader + d.tooLarge
  let bytesIn = 0
  let bytesOut = 0
  for (const listener of options.listeners()) {
    if (listener.name !== 'mqtt' && listener.name !== 'mqtts') continue
    const bytes = listener.bytes()
    bytesIn += bytes.read
    bytesOut += bytes.written
  }
  // Every record is a retained message here (subscribing delivers it), so tables count too.
  let retained = counts.count(TOPICS_TABLE)
  for (const table of runtime.schema.tables) retained += counts.count(table.storageName)

  const total = gauges.sessions
  const values = new Map<string, number>([
    ['clients/total', total],
    ['clients/maximum', Math.max(maximumClients, total)],
    ['clients/connected', connected],
    ['clients/active', connected],
    ['clients/disconnected', total - connected],
    ['clients/inactive', total - connected],
    ['messages/received', received],
    ['messages/sent', sent],
    ['publish/messages/received', received],
    ['publish/messages/sent', sent],
    ['publish/messages/dropped', dropped],
    ['bytes/received', bytesIn],
    ['bytes/sent', bytesOut],
    ['subscriptions/count', gauges.subscriptions],
    ['retained messages/count', retained],
  ])
  return {
    values,
    totals: {
      'messages/received': received,
      'messages/sent': sent,
      'publish/received': received,
      'publish/sent': sent,
      'publish/dropped': dropped,
      'bytes/received': bytesIn,
      'bytes/sent': bytesOut,
      connections: connects,
    },
  }
}

/**
 * Starts publishing `$SYS/broker/...`: the version once, every figure now, then every
 * `intervalSeconds`. A write that fails is logged (once per run of failures) and tried at the next
 * refresh; it never stops the timer.
 *
 * @example
 * const sys = startSysTopics({ runtime, broker, listeners: () => listeners, counts, intervalSeconds: 10, version: '1.0.0', logger })
 * await sys.close()
 */
export function startSysTopics(options: SysTopicsOptions): SysTopics {
  const { runtime, logger, intervalSeconds } = options
  if (intervalSeconds <= 0) return { close: async () => {} }
  const pending = new Set<Promise<unknown>>()
  const published = new Map<string, string>()
  const averages = new Map<string, number>()
  const started = Date.now()
  let previous: { at: number; totals: Record<LoadName, number> } | undefined
  let maximumClients = 0
  let failing = false
  let closed = false

  const publish = (topic: string, text: string, always = false) => {
    if (!always && published.get(topic) === text) return
    published.set(topic, text)
    const write = runtime
      .publish(`$SYS/broker/${topic}`, { payload: Buffer.from(text), retain: true, qos: 0 }, SYSTEM)
      .then(
        () => {
          failing = false
        },
        (err: unknown) => {
          // forget it so the next refresh writes it again
          published.delete(topic)
          if (!failing) logger.warn({ err, topic: `$SYS/broker/${topic}` }, 'cannot publish a $SYS topic')
          failing = true
        },
      )
    pending.add(write)
    void write.finally(() => pending.delete(write))
  }

  const refresh = () => {
    if (closed) return
    let reading: Reading
    try {
      reading = read(options, maximumClients)
    } catch (err) {
      logger.warn({ err }, 'cannot read the $SYS figures')
      return
    }
    const now = Date.now()
    maximumClients = reading.values.get('clients/maximum')!
    publish('uptime', `${Math.floor((now - started) / 1000)} seconds`, true)
    for (const [topic, value] of reading.values) publish(topic, String(value))
    // Load: an exponentially weighted per-minute rate over 1, 5 and 15 minutes (Mosquitto's formula).
    const seconds = previous ? (now - previous.at) / 1000 : 0
    for (const name of LOADS) {
      const perMinute =
        previous && seconds > 0 ? ((reading.totals[name] - previous.totals[name]) * 60) / seconds : 0
      for (const minutes of WINDOWS) {
        const key = `load/${name}/${minutes}min`
        const before = averages.get(key) ?? 0
        const after = previous ? perMinute + Math.exp(-seconds / (60 * minutes)) * (before - perMinute) : 0
        averages.set(key, after)
        publish(key, after.toFixed(2))
      }
    }
    previous = { at: now, totals: reading.totals }
  }

  publish('version', `proj-server version ${options.version}`, true)
  refresh()
  const timer = setInterval(refresh, intervalSeconds * 1000)
  timer.unref()
  return {
    async close() {
      closed = true
      clearInterval(timer)
      while (pending.size > 0) await Promise.allSettled([...pending])
    },
  }
}
