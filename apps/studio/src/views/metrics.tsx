import { useEffect, useRef, useState } from 'preact/hooks'
import { type Api, ApiError } from '../api.js'
import { type MetricJson, type Point, point, type Reading, reading } from '../metrics-data.js'
import { Chart, formatNumber } from './chart.js'

const INTERVAL_MS = 2000
const WINDOW = 90

/** Live charts read from `/metrics` (its JSON form) every two seconds. */
export function MetricsView({ api }: { api: Api }) {
  const [points, setPoints] = useState<Point[]>([])
  const [latest, setLatest] = useState<Reading | null>(null)
  const [error, setError] = useState<string | null>(null)
  const previous = useRef<Reading | null>(null)

  useEffect(() => {
    let live = true
    const poll = async () => {
      try {
        const metrics = await api.json<MetricJson[]>('GET', '/metrics')
        if (!live) return
        const now = reading(metrics, Date.now())
        const before = previous.current
        previous.current = now
        setLatest(now)
        setError(null)
        if (before) setPoints((list) => [...list, point(before, now)].slice(-WINDOW))
      } catch (err) {
        if (!live) return
        setError(
          err instanceof ApiError && err.status === 403
            ? 'Your role may not read the metrics (the server’s metrics.access setting).'
            : (err as Error).message,
        )
      }
    }
    void poll()
    const timer = setInterval(poll, INTERVAL_MS)
    return () => {
      live = false
      clearInterval(timer)
    }
  }, [api])

  const times = points.map((p) => p.at / 1000)
  return (
    <section aria-labelledby="metrics-title">
      <div class="section-head">
        <h1 id="metrics-title">Metrics</h1>
        <span class="muted small">
          from <code>/metrics</code> every {INTERVAL_MS / 1000} s
        </span>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {latest && (
        <dl class="tiles">
          <Tile label="MQTT connections" value={latest.connections} />
          <Tile label="sessions" value={latest.sessions} />
          <Tile label="subscriptions" value={latest.subscriptions} />
          <Tile label="retained topics" value={latest.retained} />
          <Tile label="event-loop lag" value={latest.eventLoopLag * 1000} unit=" ms" />
        </dl>
      )}
      <div class="charts">
        <Chart
          title="Messages per second"
          unit="/s"
          times={times}
          series={[
            { label: 'in', color: '#2457c5', values: points.map((p) => p.inPerSecond) },
            { label: 'out', color: '#1f9d6b', values: points.map((p) => p.outPerSecond) },
          ]}
        />
        <Chart
          title="MQTT connections"
          unit=""
          times={times}
          series={[{ label: 'connected', color: '#8a4fd8', values: points.map((p) => p.connections) }]}
        />
        <Chart
          title="Commit latency (mean per interval)"
          unit=" ms"
          times={times}
          series={[
            { label: 'commit', color: '#d9822b', values: points.map((p) => p.commitMs) },
            { label: 'fsync', color: '#c23b3b', values: points.map((p) => p.fsyncMs) },
          ]}
        />
      </div>
    </section>
  )
}

function Tile({ label, value, unit = '' }: { label: string; value: number; unit?: string }) {
  return (
    <div class="tile">
      <dt>{label}</dt>
      <dd>
        {formatNumber(value)}
        {unit}
      </dd>
    </div>
  )
}
