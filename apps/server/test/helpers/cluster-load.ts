import type { NatsCluster } from '@proj/test-utils'
import type { MqttClient } from 'mqtt'
import { expect, vi } from 'vitest'
import { getRecord, send, within } from './cluster.js'

/**
 * PUTs `Dog/<prefix><i>` on `url` with `parallel` writers until `stop()`: the acknowledged ids, the
 * refusals (an HTTP status, or the request's error: a fetch that failed or timed out is no success),
 * and the longest time one acknowledged write took.
 */
export function writeLoop(url: () => string, prefix: string, parallel = 4) {
  const acked: string[] = []
  const refused: (number | string)[] = []
  let slowestMs = 0
  /** The slowest since the last `takeSlowest()`. */
  let slowestSince = 0
  let stopped = false
  let i = 0
  const writer = async () => {
    while (!stopped) {
      const id = `${prefix}${i++}`
      const started = Date.now()
      try {
        const res = await send(url(), 'PUT', `Dog/${id}`, { name: id })
        if (res.status < 300) {
          acked.push(id)
          slowestMs = Math.max(slowestMs, Date.now() - started)
          slowestSince = Math.max(slowestSince, Date.now() - started)
        } else refused.push(res.status)
      } catch (error) {
        refused.push(`${id}: ${(error as Error).message}`)
      }
    }
  }
  const done = Promise.all(Array.from({ length: parallel }, writer))
  return {
    acked,
    refused,
    get slowestMs() {
      return slowestMs
    },
    /** The longest acknowledged write since the last call (for one phase of a test). */
    takeSlowest() {
      const slowest = slowestSince
      slowestSince = 0
      return slowest
    },
    async stop() {
      stopped = true
      await done
    },
  }
}

export async function expectPresent(url: string, ids: string[]) {
  const list = await getRecord(url, 'Dog/?limit=100000')
  const have = new Set((list.body as { id: string }[]).map((d) => d.id))
  expect(ids.filter((id) => !have.has(id))).toEqual([])
}

interface StreamDetail {
  name: string
  cluster?: { leader?: string; replicas?: { name: string; current: boolean }[] }
}

/** The stream `name` as a running NATS server's monitoring port describes it (undefined: no answer). */
async function streamDetail(server: { httpPort: number }, name: string): Promise<StreamDetail | undefined> {
  const res = await fetch(`http://127.0.0.1:${server.httpPort}/jsz?accounts=true&streams=true`).catch(
    () => undefined,
  )
  const jsz = (await res?.json().catch(() => undefined)) as
    | { account_details?: { stream_detail?: StreamDetail[] }[] }
    | undefined
  return (jsz?.account_details ?? []).flatMap((a) => a.stream_detail ?? []).find((d) => d.name === name)
}

/** Index of the NATS server that leads the stream `name` (from a running server's monitoring port). */
export function streamLeader(nats: NatsCluster, name = 'proj'): Promise<number> {
  return vi.waitFor(
    async () => {
      for (const server of nats.servers) {
        if (!server.running) continue
        const leader = (await streamDetail(server, name))?.cluster?.leader
        const index = nats.servers.findIndex((s) => s.name === leader)
        if (index >= 0) return index
      }
      throw new Error(`no server names a leader of stream ${name}`)
    },
    { timeout: 15_000, interval: 100 },
  )
}

/**
 * Publishes numbered messages (`<phase>:<i>`) on `topic` through `client` until `stop()`: QoS 1 one at a
 * time, each waiting for its PUBACK (acknowledged, or refused with the reason: a negative PUBACK, a closed
 * connection, no answer within `boundMs`), QoS 0 one every `everyMs`. `phase` names the part of the test
 * a message was sent in.
 */
export function publishLoop(
  client: MqttClient,
  topic: string,
  qos: 0 | 1,
  options: { everyMs?: number; boundMs?: number } = {},
) {
  const sent: string[] = []
  const refused: string[] = []
  let slowestMs = 0
  /** The slowest since the last `takeSlowest()`. */
  let slowestSince = 0
  let stopped = false
  let phase = 'steady'
  const run = async () => {
    for (let i = 0; !stopped; i++) {
      const payload = `${phase}:${i}`
      const started = Date.now()
      try {
        await within(
          `${qos === 1 ? 'PUBACK of ' : ''}${topic} ${payload}`,
          client.publishAsync(topic, payload, { qos }),
          options.boundMs ?? 20_000,
        )
        sent.push(payload)
        slowestMs = Math.max(slowestMs, Date.now() - started)
        slowestSince = Math.max(slowestSince, Date.now() - started)
      } catch (error) {
        refused.push(`${payload}: ${(error as Error).message}`)
        // a client that was ended refuses at once: stop rather than spin
        if (client.disconnecting || client.disconnected) break
      }
      // QoS 0 at a steady rate (QoS 1 is paced by its acknowledgements); a macrotask either way, so a
      // loop of refusals cannot hold up the event loop
      await new Promise((resolve) => setTimeout(resolve, qos === 0 ? (options.everyMs ?? 10) : 0))
    }
  }
  const done = run()
  return {
    topic,
    /** QoS 1: acknowledged; QoS 0: written to the node's socket. */
    sent,
    refused,
    get slowestMs() {
      return slowestMs
    },
    /** The longest acknowledgement since the last call (for one phase of a test). */
    takeSlowest() {
      const slowest = slowestSince
      slowestSince = 0
      return slowest
    },
    set phase(name: string) {
      phase = name
    },
    async stop() {
      stopped = true
      await done
    },
  }
}

/** Which NATS server (index) holds each named client connection, from the servers' `/connz` pages. */
export async function connectionsByServer(nats: NatsCluster): Promise<Map<string, number>> {
  const where = new Map<string, number>()
  for (const [i, server] of nats.servers.entries()) {
    if (!server.running) continue
    const res = await fetch(`http://127.0.0.1:${server.httpPort}/connz?limit=1000`).catch(() => undefined)
    const connz = (await res?.json().catch(() => undefined)) as
      | { connections?: { name?: string }[] }
      | undefined
    for (const c of connz?.connections ?? []) if (c.name) where.set(c.name, i)
  }
  return where
}

/** The running NATS server that holds the most of the nodes' QoS 0 relay connections. */
export async function busiestRelayServer(nats: NatsCluster): Promise<number> {
  const counts = new Map<number, number>()
  for (const [name, server] of await connectionsByServer(nats))
    if (name.endsWith('-relay')) counts.set(server, (counts.get(server) ?? 0) + 1)
  const [busiest] = [...counts].sort((x, y) => y[1] - x[1])
  if (busiest === undefined) throw new Error('no NATS server holds a relay connection')
  return busiest[0]
}

/**
 * Resolves once the stream `name` has a leader and every other replica is current (a NATS server that
 * restarted has caught up): losing one more server then leaves a quorum.
 */
export function streamReplicasCurrent(nats: NatsCluster, name = 'proj'): Promise<void> {
  return vi.waitFor(
    async () => {
      for (const server of nats.servers) {
        if (!server.running) continue
        const detail = await streamDetail(server, name)
        const replicas = detail?.cluster?.replicas ?? []
        if (
          detail?.cluster?.leader === server.name &&
          replicas.length === nats.servers.length - 1 &&
          replicas.every((r) => r.current)
        )
          return
      }
      throw new Error(`stream ${name} has no leader with every replica current`)
    },
    { timeout: 30_000, interval: 200 },
  )
}
