/**
 * Runs fuzz inputs against a real server process over real sockets. Lanes (an even number; each keeps
 * one protocol version) send their inputs one at a time on a connection they keep while the broker
 * does, each followed by a PINGREQ as a sync point; a broker that closes gets a new connection. Meanwhile
 * the control client keeps its round trip, the server's RSS is sampled, and the guarded state watched.
 */
import mqttPacket from 'mqtt-packet'
import { Control, percentile } from './control.js'
import { type FuzzServer, MAX_PACKET_SIZE } from './fuzz-server.js'
import type { Version } from './generate.js'
import { describeInput, type FuzzInput, makeInput, versionOf } from './input.js'
import { type Outcome, RawConnection } from './raw-connection.js'
import { walkFrames } from './wire.js'

export interface FuzzOptions {
  seed: number
  count: number
  /** Parallel connections (even). */
  lanes?: number
  /** First input index (a run can be split: inputs are independent of what ran before). */
  from?: number
  /** How long a complete input may go unanswered, or a partial one unclosed after end of stream. */
  replyTimeoutMs?: number
  /**
   * The same for a complete CONNECT (default 30 s): its answer may wait for a password hash (scrypt, about
   * 50 ms of CPU on libuv's four threads, queued behind the other lanes' on a loaded machine) and for the
   * previous connection with its client id to be taken over. One answered after `replyTimeoutMs` is
   * reported in `slowConnects`, not as unanswered.
   */
  connectTimeoutMs?: number
  controlTimeoutMs?: number
  /** Largest growth of the server's RSS over its size after warm-up, in MB. */
  rssLimitMb?: number
  /** Stop taking new inputs after this many ms (the report says how many ran). */
  timeLimitMs?: number
  /** Progress lines (long mode). */
  log?: (line: string) => void
  /** Called after each input (the harness's own test kills the server from here). */
  afterInput?: (inputsDone: number) => void
}

export interface Unanswered {
  index: number
  mutation: string
  cmd: string
  what: string
}

export interface FuzzReport {
  seed: number
  inputs: number
  /** True when the time limit stopped the run before `count` inputs. */
  stoppedByTimeLimit: boolean
  connections: number
  closedByBroker: number
  durationMs: number
  rssBaselineMb: number
  rssPeakMb: number
  rssEndMb: number
  rssGrowthMb: number
  roundTrips: number
  controlP50Ms: number
  controlP99Ms: number
  controlMaxMs: number
  fuzzMessages: number
  checkedPayloads: number
  unanswered: Unanswered[]
  /** Complete CONNECTs answered (or closed) only after `replyTimeoutMs`: index and milliseconds. */
  slowConnects: { index: number; ms: number }[]
  mutations: Record<string, number>
}

export class FuzzFailure extends Error {
  override name = 'FuzzFailure'
}

const mb = (kb: number) => Math.round((kb / 1024) * 10) / 10

/** A lane's connection, opened with a plain valid CONNECT of the lane's version. */
async function openLane(
  server: FuzzServer,
  lane: number,
  version: Version,
  timeoutMs: number,
): Promise<RawConnection | undefined> {
  const conn = new RawConnection(server.mqttPort)
  try {
    await conn.opened
  } catch {
    return undefined
  }
  conn.socket.write(
    mqttPacket.generate(
      {
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: version,
        clean: true,
        clientId: `lane-${lane}`,
        keepalive: 0,
      },
      { protocolVersion: version },
    ),
  )
  const o = await conn.waitConnack(timeoutMs)
  if (o === 'answered' && conn.connackCode === 0) return conn
  await conn.destroy()
  return undefined
}

/**
 * Sends one input on `conn` and waits for its outcome: a complete input is followed by a PINGREQ that
 * must be answered (or the connection closed); a partial one whose declared length exceeds the maximum
 * packet size must be closed by the broker on its own; any other partial one gets end of stream, after
 * which the broker must close.
 */
export async function deliver(conn: RawConnection, input: FuzzInput, timeoutMs: number): Promise<Outcome> {
  await conn.write(input.bytes, input.drip)
  const walk = walkFrames(input.bytes)
  if (walk.complete) return conn.sync(walk.pings, timeoutMs)
  // the partial frame's own declared size, not the input's: earlier whole frames in the input do not count
  if (walk.lastFrame > MAX_PACKET_SIZE) return conn.waitClosed(timeoutMs)
  conn.end()
  return conn.waitClosed(timeoutMs)
}

function describeOutcome(input: FuzzInput): string {
  const walk = walkFrames(input.bytes)
  if (walk.complete)
    return 'complete input: the PINGREQ after it was neither answered nor the connection closed'
  if (walk.missing === Number.POSITIVE_INFINITY)
    return 'malformed remaining length: the connection stayed open'
  if (walk.lastFrame > MAX_PACKET_SIZE) {
    return `declared length over the maximum packet size (a ${walk.lastFrame}-byte packet): the connection stayed open`
  }
  return 'partial input then end of stream: the connection stayed open'
}

export async function runFuzz(server: FuzzServer, options: FuzzOptions): Promise<FuzzReport> {
  const lanes = options.lanes ?? 8
  if (lanes % 2 !== 0) throw new Error('lanes must be even (each lane keeps one protocol version)')
  const from = options.from ?? 0
  const end = from + options.count
  const replyTimeoutMs = options.replyTimeoutMs ?? 5000
  const connectTimeoutMs = Math.max(replyTimeoutMs, options.connectTimeoutMs ?? 30_000)
  const log = options.log ?? (() => {})
  const started = performance.now()
  const control = await Control.open(server.process.listeners.mqtt!.url)
  const report: FuzzReport = {
    seed: options.seed,
    inputs: 0,
    stoppedByTimeLimit: false,
    connections: 0,
    closedByBroker: 0,
    durationMs: 0,
    rssBaselineMb: 0,
    rssPeakMb: 0,
    rssEndMb: 0,
    rssGrowthMb: 0,
    roundTrips: 0,
    controlP50Ms: 0,
    controlP99Ms: 0,
    controlMaxMs: 0,
    fuzzMessages: 0,
    checkedPayloads: 0,
    unanswered: [],
    slowConnects: [],
    mutations: {},
  }
  let failure: string | undefined
  const fail = (why: string) => {
    failure ??= why
  }
  const inFlight = new Map<number, FuzzInput>()
  /** The inputs each lane sent on its current connection (the state a failing input met). */
  const history = new Map<number, FuzzInput[]>()
  const exitReason = () => {
    const { exitCode, signalCode } = server.process.child
    return exitCode === null && signalCode === null
      ? undefined
      : `the server process exited (${signalCode ?? `code ${exitCode}`})`
  }
  const onExit = () => fail(exitReason() ?? 'the server process exited')
  server.process.child.once('exit', onExit)

  let rssBaseKb = 0
  let rssPeakKb = 0
  const warmup = from + Math.max(lanes, Math.floor(options.count / 20))
  // input i belongs to lane i % lanes: each lane keeps its version and its order is reproducible
  const firstOf = (lane: number): number => from + ((lane - (from % lanes) + lanes) % lanes)

  const runLane = async (lane: number) => {
    const version = versionOf(lane)
    let conn: RawConnection | undefined
    for (let i = firstOf(lane); i < end && failure === undefined; i += lanes) {
      if (options.timeLimitMs !== undefined && performance.now() - started > options.timeLimitMs) {
        report.stoppedByTimeLimit = true
        break
      }
      const input = makeInput(options.seed, i)
      inFlight.set(lane, input)
      report.mutations[input.mutation] = (report.mutations[input.mutation] ?? 0) + 1
      control.sent(input.bytes, input.cmd === 'connect')
      let target: RawConnection | undefined
      if (input.fresh) {
        target = new RawConnection(server.mqttPort)
        report.connections++
        await target.opened.catch(() => fail(`input ${i}: cannot open a connection`))
      } else {
        while (conn === undefined && failure === undefined) {
          conn = await openLane(server, lane, version, replyTimeoutMs)
          report.connections++
          history.set(lane, [])
        }
        target = conn
      }
      if (failure !== undefined || target === undefined) break
      if (!input.fresh) {
        const h = history.get(lane)
        h?.push(input)
        if (h !== undefined && h.length > 6) h.shift()
      }
      const connect = input.cmd === 'connect' && walkFrames(input.bytes).complete
      const sentAt = performance.now()
      const outcome = await deliver(target, input, connect ? connectTimeoutMs : replyTimeoutMs)
      const tookMs = Math.round(performance.now() - sentAt)
      if (connect && outcome !== 'timeout' && tookMs > replyTimeoutMs)
        report.slowConnects.push({ index: i, ms: tookMs })
      report.inputs++
      options.afterInput?.(report.inputs)
      if (outcome === 'timeout' && failure === undefined) {
        report.unanswered.push({
          index: i,
          mutation: input.mutation,
          cmd: input.cmd,
          what: describeOutcome(input),
        })
      }
      if (outcome === 'closed') report.closedByBroker++
      if (input.fresh || outcome !== 'answered') {
        await target.destroy()
        if (target === conn) conn = undefined
      }
      if (i >= warmup && rssBaseKb === 0) rssBaseKb = server.rssKb()
    }
    // a failed run keeps what each lane had in flight for the report
    if (failure === undefined) inFlight.delete(lane)
    await conn?.destroy()
  }

  let running = true
  const controlLoop = async () => {
    let lastLog = performance.now()
    while (running && failure === undefined) {
      try {
        await control.roundTrip(options.controlTimeoutMs ?? 10_000)
      } catch (err) {
        fail(String(err))
        break
      }
      control.checkPayloads()
      if (control.violations.length > 0) fail(control.violations.join('\n'))
      if (server.process.child.exitCode === null) {
        const rss = server.rssKb()
        rssPeakKb = Math.max(rssPeakKb, rss)
        if (rssBaseKb > 0 && options.rssLimitMb !== undefined && mb(rss - rssBaseKb) > options.rssLimitMb) {
          fail(`the server's RSS grew by ${mb(rss - rssBaseKb)} MB (over ${options.rssLimitMb} MB)`)
        }
      }
      if (performance.now() - lastLog > 10_000) {
        lastLog = performance.now()
        log(
          `fuzz: ${report.inputs} inputs, ${report.connections} connections, RSS ${mb(server.rssKb())} MB, ` +
            `control p99 ${percentile(control.latencies, 99).toFixed(1)} ms, ${Math.round((report.inputs * 1000) / (performance.now() - started))} inputs/s`,
        )
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  const loop = controlLoop()
  await Promise.all(Array.from({ length: lanes }, (_, lane) => runLane(lane)))
  running = false
  await loop
  if (failure === undefined) {
    // the last word: one more round trip, the payload sample, the process
    await control.roundTrip(options.controlTimeoutMs ?? 10_000).catch((err) => fail(String(err)))
    control.checkPayloads()
    if (control.violations.length > 0) fail(control.violations.join('\n'))
  }
  server.process.child.off('exit', onExit)
  await control.close()

  report.durationMs = Math.round(performance.now() - started)
  const endKb = server.process.child.exitCode === null ? server.rssKb() : 0
  rssPeakKb = Math.max(rssPeakKb, endKb)
  report.rssBaselineMb = mb(rssBaseKb)
  report.rssPeakMb = mb(rssPeakKb)
  report.rssEndMb = mb(endKb)
  report.rssGrowthMb = rssBaseKb > 0 ? mb(rssPeakKb - rssBaseKb) : 0
  report.roundTrips = control.latencies.length
  report.controlP50Ms = Math.round(percentile(control.latencies, 50) * 10) / 10
  report.controlP99Ms = Math.round(percentile(control.latencies, 99) * 10) / 10
  report.controlMaxMs = Math.round(Math.max(0, ...control.latencies) * 10) / 10
  report.fuzzMessages = control.fuzzMessages
  report.checkedPayloads = control.checkedPayloads

  if (failure !== undefined) {
    // a dead server is the news, whatever noticed first (a lane, the control client)
    const exited = exitReason()
    if (exited !== undefined && !failure.startsWith(exited))
      failure = `${exited}; first noticed as: ${failure}`
    const lines = [
      `fuzz failure (seed ${options.seed}): ${failure}`,
      'inputs in flight, each after what its connection had received:',
    ]
    for (const [lane, input] of inFlight) {
      const before = (history.get(lane) ?? []).filter((h) => h.index !== input.index).slice(-5)
      lines.push(`lane ${lane}: ${describeInput(input)}`)
      for (const h of before) lines.push(`    after ${describeInput(h, 128).split('\n')[0]}`)
    }
    lines.push(server.process.output().slice(-4000))
    throw new FuzzFailure(lines.join('\n'))
  }
  return report
}

/** Sends input `index` of `seed` alone (on a fresh lane connection unless it is a first packet itself). */
export async function replayInput(
  server: FuzzServer,
  seed: number,
  index: number,
  timeoutMs = 5000,
): Promise<{ input: FuzzInput; outcome: Outcome }> {
  const input = makeInput(seed, index)
  const conn = input.fresh
    ? new RawConnection(server.mqttPort)
    : await openLane(server, index % 2, input.version, timeoutMs)
  if (conn === undefined) throw new Error('replay: the lane connection was refused')
  await conn.opened
  const outcome = await deliver(conn, input, timeoutMs)
  await conn.destroy()
  return { input, outcome }
}
