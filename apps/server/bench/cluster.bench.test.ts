/**
 * Cluster benchmark (`pnpm --filter @proj/server bench`, not part of `pnpm test`): a publisher on node A,
 * subscribers on nodes B and C, next to the same on one node without a cluster, in the same run.
 * For QoS 0 and QoS 1: latency (p50/p99, publish to receipt) at a fixed rate, and throughput (messages
 * per second received by each subscriber when the publisher sends as fast as it may).
 * Environment: BENCH_RATE (5000/s), BENCH_SECONDS (3), BENCH_COUNT (20000).
 */
import { performance } from 'node:perf_hooks'
import { natsSkipReason, tempDir } from '@proj/test-utils'
import type { MqttClient } from 'mqtt'
import { afterAll, describe, it } from 'vitest'
import { connectMqtt } from '../test/helpers/clients.js'
import { startClusterNodes } from '../test/helpers/cluster.js'
import { startServerProcess } from '../test/helpers/server-process.js'

const RATE = Number(process.env.BENCH_RATE ?? 5000)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)
const COUNT = Number(process.env.BENCH_COUNT ?? 20_000)
const ADMIN = { username: 'admin', password: 'pw', protocolVersion: 5 as const }

interface Row {
  setup: string
  qos: number
  rate: number
  received: string
  p50: number
  p99: number
  throughput: number[]
}

const rows: Row[] = []
const cleanups: (() => Promise<void>)[] = []
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {})
  console.table(
    rows.map((r) => ({
      setup: r.setup,
      qos: r.qos,
      'rate/s': r.rate,
      received: r.received,
      'p50 ms': r.p50.toFixed(2),
      'p99 ms': r.p99.toFixed(2),
      'max msg/s per subscriber': r.throughput.map((t) => Math.round(t)).join(' / '),
    })),
  )
})

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}

/** Resolves once every subscriber got `count` messages on `topic`, or after `ms` (QoS 0 may lose some). */
function receive(
  subs: MqttClient[],
  topic: string,
  count: number,
  ms: number,
  onMessage?: (p: Buffer) => void,
) {
  const got = subs.map(() => 0)
  const done = subs.map(
    (sub, i) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms)
        sub.on('message', (t, payload) => {
          if (t !== topic) return
          onMessage?.(payload)
          if (++got[i]! === count) {
            clearTimeout(timer)
            resolve()
          }
        })
      }),
  )
  return { got, all: Promise.all(done) }
}

async function scenario(setup: string, pubUrl: string, subUrls: string[]) {
  const subs = await Promise.all(subUrls.map((u) => connectMqtt(u, ADMIN)))
  const pub = await connectMqtt(pubUrl, ADMIN)
  // QoS 1: at most WINDOW unacknowledged (below the server's receive maximum; MQTT.js stalls beyond it)
  const WINDOW = 50
  let outstanding = 0
  let wake: (() => void) | null = null
  const publish = async (topic: string, payload: string, qos: 0 | 1) => {
    if (qos === 0) {
      pub.publish(topic, payload, { qos })
      return
    }
    while (outstanding >= WINDOW) await new Promise<void>((r) => (wake = r))
    outstanding++
    pub.publish(topic, payload, { qos }, () => {
      outstanding--
      const w = wake
      wake = null
      w?.()
    })
  }
  cleanups.push(async () => {
    for (const c of [...subs, pub]) c.end(true)
  })
  for (const qos of [0, 1] as const) {
    const latTopic = `bench/${setup}/lat${qos}`
    const tpTopic = `bench/${setup}/tp${qos}`
    await Promise.all(subs.map((s) => s.subscribeAsync({ [latTopic]: { qos }, [tpTopic]: { qos } })))
    // latency at a fixed rate: a batch every 10 ms, each payload its send time
    const total = RATE * SECONDS
    const latencies: number[] = []
    const lat = receive(subs, latTopic, total, SECONDS * 1000 + 20_000, (p) =>
      latencies.push(performance.now() - Number(p.toString())),
    )
    const perTick = Math.max(1, Math.round(RATE / 100))
    const start = performance.now()
    for (let sent = 0, tick = 0; sent < total; tick++) {
      const due = start + tick * 10
      const wait = due - performance.now()
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
      for (let k = 0; k < perTick && sent < total; k++, sent++)
        await publish(latTopic, String(performance.now()), qos)
    }
    await lat.all
    latencies.sort((a, b) => a - b)
    // throughput: as fast as the publisher may (QoS 1: up to its in-flight window)
    const tp = receive(subs, tpTopic, COUNT, 20_000)
    const t0 = performance.now()
    const ends = subs.map(() => 0)
    tp.all.then(() => {})
    const finished = subs.map(
      (s, i) =>
        new Promise<void>((resolve) => {
          const check = setInterval(() => {
            if (tp.got[i]! >= COUNT) {
              ends[i] = performance.now()
              clearInterval(check)
              resolve()
            }
          }, 5)
          tp.all.then(() => {
            clearInterval(check)
            if (ends[i] === 0) ends[i] = performance.now()
            resolve()
          })
        }),
    )
    for (let i = 0; i < COUNT; i++) {
      await publish(tpTopic, 'x', qos)
      if (i % 500 === 499) await new Promise((r) => setImmediate(r))
    }
    await Promise.all(finished)
    const row: Row = {
      setup,
      qos,
      rate: RATE,
      received: lat.got.map((g) => `${g}/${total}`).join(' '),
      p50: quantile(latencies, 0.5),
      p99: quantile(latencies, 0.99),
      throughput: ends.map((e, i) => (tp.got[i]! * 1000) / (e - t0)),
    }
    rows.push(row)
    console.log(JSON.stringify(row))
  }
}

describe('MQTT across nodes vs one node', () => {
  it('single node: publisher and two subscribers on one server', async () => {
    const dir = await tempDir('proj-bench-single-')
    const server = await startServerProcess(dir.path, { env: { ADMIN_PASSWORD: 'pw' } })
    cleanups.push(async () => {
      await server.stop(5000)
      await dir.remove()
    })
    const mqtt = server.listeners.mqtt!.url
    await scenario('single', mqtt, [mqtt, mqtt])
  })

  it.skipIf(natsSkipReason !== undefined)(
    'cluster: publisher on node a, subscribers on b and c',
    async () => {
      const cluster = await startClusterNodes(['a', 'b', 'c'], { env: { PROJ_LOGGING_LEVEL: 'warn' } })
      cleanups.push(() => cluster.stop())
      await scenario('cluster', cluster.node('a').mqtt, [cluster.node('b').mqtt, cluster.node('c').mqtt])
    },
  )
})
