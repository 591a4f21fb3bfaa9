/**
 * Cluster benchmark (`pnpm --filter @proj/server bench`, not part of `pnpm test`; under 2 minutes): a
 * publisher on node a, subscribers on nodes b and c, next to the same on one node without a cluster, in
 * the same run. Each client is its own process (`client.mjs`, a lean MQTT 3.1.1 client), so the latency is
 * the servers' and not the clients' event loops'. For QoS 0 and QoS 1: latency from the publisher's write
 * to the subscriber's read (p50/p99, stamps from CLOCK_MONOTONIC, shared by all processes) at a fixed
 * rate, the servers' CPU per message at that rate, then throughput (messages per second received by each
 * subscriber while the publisher sends as fast as its socket takes them; QoS 1 with at most 50
 * unacknowledged). Prints a markdown table for packages/cluster/README.md, with the load average.
 * Environment: BENCH_RATE (5000/s), BENCH_SECONDS (3), BENCH_COUNT (20000; QoS 1: half), BENCH_QOS
 * (`0,1`: the QoS levels to run), BENCH_CPU_PROF (a folder: the server processes write CPU profiles
 * there when they stop, `<pid>.cpuprofile`; run one QoS and one phase at a time, e.g. `BENCH_COUNT=0` or
 * `BENCH_SECONDS=0`, and `-t cluster` or `-t single`). Variants, never the issue's figure (the report
 * names them): BENCH_NATS (3: the NATS servers of the cluster, routed to each other; 1: one server, stream
 * with one replica), BENCH_WARMUP (0: seconds of the same paced traffic on another topic before the
 * measured phase, so the processes' JIT compilers are done before it).
 */
import { type ChildProcess, fork } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { natsSkipReason, tempDir } from '@proj/test-utils'
import { afterAll, describe, it } from 'vitest'
import { ADMIN, startClusterNodes } from '../test/helpers/cluster.js'
import { startServerProcess } from '../test/helpers/server-process.js'

const RATE = Number(process.env.BENCH_RATE ?? 5000)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)
const COUNT = Number(process.env.BENCH_COUNT ?? 20_000)
const QOS = (process.env.BENCH_QOS ?? '0,1').split(',').map(Number) as (0 | 1)[]
const CPU_PROF = process.env.BENCH_CPU_PROF
const NATS_SERVERS = Number(process.env.BENCH_NATS ?? 3)
const WARMUP = Number(process.env.BENCH_WARMUP ?? 0)
/** Environment for the server processes: a CPU profile each (`cpu-prof.mjs`) when BENCH_CPU_PROF is set. */
const PROF_ENV: Record<string, string> = CPU_PROF
  ? { NODE_OPTIONS: `--import=${join(dirname(fileURLToPath(import.meta.url)), 'cpu-prof.mjs')}` }
  : {}
const CLIENT = join(dirname(fileURLToPath(import.meta.url)), 'client.mjs')

interface Row {
  setup: string
  qos: number
  received: number[]
  sent: number
  late: number
  p50: number
  p99: number
  /** CPU of the server nodes (and of the NATS servers) per message at the fixed rate, µs. */
  nodeCpu: number
  natsCpu: number
  /** CPU of the client processes per message at the fixed rate, µs (high: the clients may be the limit). */
  clientCpu: number
  /** nodeCpu per node (a, b, c), in the JSON line only. */
  eachNodeCpu: number[]
  /** Context switches per message of each node, then each NATS server (JSON line only). */
  switchesPerMsg: number[]
  /** Time the threads of the nodes, NATS servers and clients spent runnable but waiting for a core, µs/msg. */
  waits: [nodes: number, nats: number, clients: number]
  throughput: number[]
  tpReceived: number[]
  tpSent: number
}

const rows: Row[] = []
const cleanups: (() => Promise<void>)[] = []
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {})
  if (rows.length > 0) console.log(report())
})

/** A client process, driven over IPC. */
async function client(url: string, clientId: string) {
  const child: ChildProcess = fork(CLIENT, [], {
    execArgv: [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  cleanups.push(async () => {
    child.kill('SIGKILL')
  })
  let next = 0
  const calls = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>()
  child.on('message', (m: { id: number; result?: unknown; error?: string }) => {
    const call = calls.get(m.id)
    calls.delete(m.id)
    if (m.error !== undefined) call?.reject(new Error(`${clientId}: ${m.error}`))
    else call?.resolve(m.result)
  })
  child.once('exit', (code) => {
    for (const c of calls.values()) c.reject(new Error(`${clientId} exited with ${code}`))
  })
  const call = <T>(op: string, args: object = {}) =>
    new Promise<T>((resolve, reject) => {
      const id = next++
      calls.set(id, { resolve: resolve as (v: unknown) => void, reject })
      child.send({ id, op, ...args })
    })
  await call('connect', { url, clientId, ...ADMIN })
  return { call, pid: child.pid! }
}

interface Received {
  received: number
  first: string
  last: string
  hist: [number, number][]
}

/** The bucket's value (µs) of the client's histogram index. */
const bucketUs = (i: number) => (i < 1000 ? i + 0.5 : 1000 * 1.01 ** (i - 1000 + 0.5))

function quantile(hists: [number, number][][], q: number): number {
  const merged = new Map<number, number>()
  for (const h of hists) for (const [i, n] of h) merged.set(i, (merged.get(i) ?? 0) + n)
  const total = [...merged.values()].reduce((a, b) => a + b, 0)
  if (total === 0) return Number.NaN
  let seen = 0
  for (const i of [...merged.keys()].sort((a, b) => a - b)) {
    seen += merged.get(i)!
    if (seen >= q * total) return bucketUs(i) / 1000
  }
  return Number.NaN
}

/** CPU time (ms) used so far by the processes `pids` (utime + stime from /proc). */
function cpuMs(pids: number[]): number {
  let ticks = 0
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      ticks += Number(fields[11]) + Number(fields[12])
    } catch {
      // exited
    }
  }
  return ticks * 10 // USER_HZ = 100
}

/** Time (ms) the threads of `pids` spent runnable, waiting for a core (/proc/<pid>/task/<tid>/schedstat). */
function waitMs(pids: number[]): number {
  let ns = 0
  for (const pid of pids) {
    try {
      for (const tid of readdirSync(`/proc/${pid}/task`))
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[1])
    } catch {
      // exited
    }
  }
  return ns / 1e6
}

/** Context switches of the threads of `pid` so far (voluntary + involuntary, /proc/<pid>/task/<tid>/status). */
function switches(pid: number): number {
  let n = 0
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`))
      for (const m of readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8').matchAll(
        /ctxt_switches:\s+(\d+)/g,
      ))
        n += Number(m[1])
  } catch {
    // exited
  }
  return n
}

async function scenario(
  setup: string,
  pubUrl: string,
  subUrls: string[],
  pids: { nodes: number[]; nats: number[] },
) {
  const subs = await Promise.all(subUrls.map((u, i) => client(u, `${setup}-sub${i}`)))
  const pub = await client(pubUrl, `${setup}-pub`)
  const clientPids = [pub.pid, ...subs.map((s) => s.pid)]
  for (const qos of QOS) {
    const latTopic = `bench/${setup}/lat${qos}`
    const tpTopic = `bench/${setup}/tp${qos}`
    await Promise.all(
      subs.map((s) => s.call('subscribe', { subscriptions: { [latTopic]: qos, [tpTopic]: qos } })),
    )
    if (WARMUP > 0) {
      const warmTopic = `bench/${setup}/warm${qos}`
      await Promise.all(subs.map((s) => s.call('subscribe', { subscriptions: { [warmTopic]: qos } })))
      const warm = subs.map((s) =>
        s.call<Received>('expect', {
          topic: warmTopic,
          expected: RATE * WARMUP,
          timeoutMs: WARMUP * 1000 + 15_000,
          idleMs: 3000,
        }),
      )
      await pub.call('paced', { topic: warmTopic, qos, rate: RATE, count: RATE * WARMUP })
      await Promise.all(warm)
    }
    // latency at a fixed rate
    const total = RATE * SECONDS
    const lat = subs.map((s) =>
      s.call<Received>('expect', {
        topic: latTopic,
        expected: total,
        timeoutMs: SECONDS * 1000 + 15_000,
        idleMs: 3000,
      }),
    )
    const cpu0 = [cpuMs(pids.nodes), cpuMs(pids.nats), cpuMs(clientPids)]
    const each0 = pids.nodes.map((p) => cpuMs([p]))
    const sw0 = [...pids.nodes, ...pids.nats].map(switches)
    const wait0 = [waitMs(pids.nodes), waitMs(pids.nats), waitMs(clientPids)]
    const paced = await pub.call<{ sent: number; late: number }>('paced', {
      topic: latTopic,
      qos,
      rate: RATE,
      count: total,
    })
    const got = await Promise.all(lat)
    const cpu1 = [cpuMs(pids.nodes), cpuMs(pids.nats), cpuMs(clientPids)]
    const each1 = pids.nodes.map((p) => cpuMs([p]))
    const sw1 = [...pids.nodes, ...pids.nats].map(switches)
    const wait1 = [waitMs(pids.nodes), waitMs(pids.nats), waitMs(clientPids)]
    // throughput: as fast as the publisher's socket takes them (QoS 1: at most 50 unacknowledged)
    const count = qos === 0 ? COUNT : Math.round(COUNT / 2)
    const tp = subs.map((s) =>
      s.call<Received>('expect', { topic: tpTopic, expected: count, timeoutMs: 40_000, idleMs: 3000 }),
    )
    const flood = await pub.call<{ start: string }>('flood', { topic: tpTopic, qos, count, window: 50 })
    const tpGot = await Promise.all(tp)
    const row: Row = {
      setup,
      qos,
      received: got.map((g) => g.received),
      sent: paced.sent,
      late: paced.late,
      p50: quantile(
        got.map((g) => g.hist),
        0.5,
      ),
      p99: quantile(
        got.map((g) => g.hist),
        0.99,
      ),
      nodeCpu: ((cpu1[0]! - cpu0[0]!) * 1000) / total,
      natsCpu: ((cpu1[1]! - cpu0[1]!) * 1000) / total,
      clientCpu: ((cpu1[2]! - cpu0[2]!) * 1000) / total,
      eachNodeCpu: each1.map((c, i) => Math.round(((c - each0[i]!) * 1000) / total)),
      switchesPerMsg: sw1.map((n, i) => Math.round(((n - sw0[i]!) * 100) / total) / 100),
      waits: [0, 1, 2].map((i) => ((wait1[i]! - wait0[i]!) * 1000) / total) as Row['waits'],
      throughput: tpGot.map((g) =>
        g.received === 0 ? 0 : (g.received * 1e9) / Number(BigInt(g.last) - BigInt(flood.start)),
      ),
      tpReceived: tpGot.map((g) => g.received),
      tpSent: count,
    }
    rows.push(row)
    console.log(JSON.stringify({ ...row, natsServers: NATS_SERVERS, warmupSeconds: WARMUP }))
  }
}

const fmt = (n: number) =>
  Number.isNaN(n) ? '–' : n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)
const int = (n: number) => Math.round(n).toLocaleString('en-US')

function report(): string {
  // what `uptime` prints as the load average (read from /proc rather than run)
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(', ')
  const lines = [
    `${new Date().toISOString()}: load average ${load} (as \`uptime\` shows it)`,
    ...(NATS_SERVERS !== 3 || WARMUP > 0
      ? [
          '',
          `**Variant, not the issue's figure:** ${NATS_SERVERS} NATS server(s), ${WARMUP} s of warm-up traffic before the measured phase.`,
        ]
      : []),
    '',
    `| setup                | QoS | received at ${int(RATE)}/s | late sends | p50 ms | p99 ms | node CPU µs/msg | NATS CPU µs/msg | client CPU µs/msg | waiting for a core µs/msg (nodes, NATS, clients) | max msg/s per subscriber |`,
    '| -------------------- | --- | ------------------- | ---------- | ------ | ------ | --------------- | --------------- | ----------------- | ------------------------------------------------ | ------------------------ |',
  ]
  for (const r of rows)
    lines.push(
      `| ${(r.setup === 'single' ? 'one node' : 'cluster, a → b and c').padEnd(20)} | ${r.qos}   | ${r.received.map((n) => `${int(n)} / ${int(r.sent)}`).join(', ')} | ${r.late} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.nodeCpu)} | ${r.setup === 'single' ? '–' : fmt(r.natsCpu)} | ${fmt(r.clientCpu)} | ${r.waits.map(fmt).join(', ')} | ${r.throughput.map(int).join(' / ')}${r.tpReceived.every((n) => n === r.tpSent) ? '' : ` (received ${r.tpReceived.map(int).join(', ')} of ${int(r.tpSent)})`} |`,
    )
  return lines.join('\n')
}

describe('MQTT across nodes vs one node', () => {
  it('single node: publisher and two subscribers on one server', async () => {
    const dir = await tempDir('proj-bench-single-')
    const server = await startServerProcess(dir.path, {
      env: { ADMIN_PASSWORD: ADMIN.password, ...PROF_ENV },
    })
    cleanups.push(async () => {
      await server.stop(5000)
      await dir.remove()
    })
    const mqtt = server.listeners.mqtt!.url
    await scenario('single', mqtt, [mqtt, mqtt], { nodes: [server.pid], nats: [] })
  })

  it.skipIf(natsSkipReason !== undefined)(
    'cluster: publisher on node a, subscribers on b and c',
    async () => {
      const cluster = await startClusterNodes(['a', 'b', 'c'], {
        natsSize: NATS_SERVERS,
        env: { PROJ_LOGGING_LEVEL: 'warn', ...PROF_ENV },
      })
      cleanups.push(() => cluster.stop())
      const nodes = ['a', 'b', 'c'].map((n) => cluster.node(n))
      await scenario('cluster', nodes[0]!.mqtt, [nodes[1]!.mqtt, nodes[2]!.mqtt], {
        nodes: nodes.map((n) => n.process.pid),
        nats: cluster.nats.servers.map((s) => s.pid).filter((p): p is number => p !== undefined),
      })
    },
  )
})
