/**
 * Reads the server's metrics registry as JSON (`GET /metrics` with `Accept: application/json`, the
 * same registry Prometheus scrapes) and turns two successive reads into the numbers the charts show:
 * rates from counters, averages from histograms, levels from gauges.
 */

/** One metric as prom-client's `getMetricsAsJSON()` writes it. */
export interface MetricJson {
  name: string
  type: string
  help: string
  values: { value: number; labels: Record<string, string | number>; metricName?: string }[]
}

/** The totals the Studio needs from one read. */
export interface Reading {
  at: number
  messagesIn: number
  messagesOut: number
  connections: number
  sessions: number
  subscriptions: number
  retained: number
  commitSum: number
  commitCount: number
  fsyncSum: number
  fsyncCount: number
  eventLoopLag: number
}

/** The sum of every sample of `name` (a histogram's `_sum` or `_count` by its metricName). */
function total(metrics: MetricJson[], name: string, metricName?: string): number {
  const metric = metrics.find((m) => m.name === name)
  if (!metric) return 0
  let sum = 0
  for (const v of metric.values) {
    if (metricName !== undefined && v.metricName !== metricName) continue
    if (Number.isFinite(v.value)) sum += v.value
  }
  return sum
}

export function reading(metrics: MetricJson[], at: number): Reading {
  return {
    at,
    messagesIn: total(metrics, 'proj_mqtt_messages_received_total'),
    messagesOut: total(metrics, 'proj_mqtt_messages_sent_total'),
    connections: total(metrics, 'proj_mqtt_connections'),
    sessions: total(metrics, 'proj_mqtt_sessions'),
    subscriptions: total(metrics, 'proj_subscriptions'),
    retained: total(metrics, 'proj_retained_topics'),
    commitSum: total(metrics, 'proj_storage_commit_seconds', 'proj_storage_commit_seconds_sum'),
    commitCount: total(metrics, 'proj_storage_commit_seconds', 'proj_storage_commit_seconds_count'),
    fsyncSum: total(metrics, 'proj_storage_fsync_seconds', 'proj_storage_fsync_seconds_sum'),
    fsyncCount: total(metrics, 'proj_storage_fsync_seconds', 'proj_storage_fsync_seconds_count'),
    eventLoopLag: total(metrics, 'proj_nodejs_eventloop_lag_seconds'),
  }
}

/** What happened between two readings: rates per second and mean latencies in milliseconds. */
export interface Point {
  at: number
  inPerSecond: number
  outPerSecond: number
  connections: number
  /** Mean commit time of the commits in the interval; null when there was none. */
  commitMs: number | null
  fsyncMs: number | null
}

export function point(before: Reading, after: Reading): Point {
  const seconds = Math.max((after.at - before.at) / 1000, 0.001)
  const rate = (a: number, b: number) => Math.max(0, b - a) / seconds
  const mean = (sumA: number, sumB: number, nA: number, nB: number) =>
    nB > nA ? ((sumB - sumA) / (nB - nA)) * 1000 : null
  return {
    at: after.at,
    inPerSecond: rate(before.messagesIn, after.messagesIn),
    outPerSecond: rate(before.messagesOut, after.messagesOut),
    connections: after.connections,
    commitMs: mean(before.commitSum, after.commitSum, before.commitCount, after.commitCount),
    fsyncMs: mean(before.fsyncSum, after.fsyncSum, before.fsyncCount, after.fsyncCount),
  }
}
