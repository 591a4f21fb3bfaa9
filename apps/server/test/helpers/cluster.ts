import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type NatsCluster, natsSkipNote, natsSkipReason, startNatsCluster, tempDir } from '@proj/test-utils'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { afterAll, afterEach, beforeAll, describe } from 'vitest'
import { basic, connectMqtt } from './clients.js'
import { type ServerProcess, startServerProcess } from './server-process.js'

/** A describe block that needs nats-server: skipped without it, saying why in its name. */
export function describeCluster(name: string, fn: () => void): void {
  describe.skipIf(natsSkipReason !== undefined)(`${name}${natsSkipNote}`, fn)
}

/** The admin every cluster test node starts with. */
export const ADMIN = { username: 'admin', password: 'pw' }
export const AUTH = basic(ADMIN.username, ADMIN.password)

export interface ClusterNodeProcess {
  name: string
  root: string
  process: ServerProcess
  http: string
  mqtt: string
}

/**
 * Three NATS JetStream servers and server nodes started as child processes (loopback, port 0, temp
 * roots), each node connected to every NATS server (a different one first). `stop()` tears it all down.
 */
export async function startClusterNodes(
  names: string[],
  options: {
    natsSize?: number
    /** Extra lines for every NATS server's configuration, and for its `cluster` block. */
    natsConfig?: string[]
    natsClusterConfig?: string[]
    /** A key set to undefined is left out (the product's default applies). */
    env?: Record<string, string | undefined>
    /** Files of an application every node runs (`applications/app/<file>` in each root), instead of the built-in one. */
    application?: Record<string, string>
  } = {},
) {
  const natsSize = options.natsSize ?? 3
  const nats = await startNatsCluster({
    size: natsSize,
    ...(options.natsConfig ? { config: options.natsConfig } : {}),
    ...(options.natsClusterConfig ? { clusterConfig: options.natsClusterConfig } : {}),
  })
  const roots: { path: string; remove(): Promise<void> }[] = []
  const nodes = new Map<string, ClusterNodeProcess>()
  const envFor = (name: string, i: number, extra: Record<string, string> = {}) => {
    const urls = nats.urls.slice(i % natsSize).concat(nats.urls.slice(0, i % natsSize))
    const env: Record<string, string | undefined> = {
      ADMIN_PASSWORD: 'pw',
      PROJ_CLUSTER_NATS_SERVERS: urls.join(','),
      PROJ_CLUSTER_NODENAME: name,
      PROJ_CLUSTER_REPLICAS: String(Math.min(3, natsSize)),
      PROJ_CLUSTER_WRITETIMEOUT: '3s',
      // a write the node never applies fails (503) well within a test's timeout
      PROJ_CLUSTER_APPLYTIMEOUT: '10s',
      PROJ_LOGGING_LEVEL: 'info',
      ...options.env,
      ...extra,
    }
    return Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) as Record<
      string,
      string
    >
  }
  const start = async (name: string, extra?: Record<string, string>) => {
    const i = names.indexOf(name)
    let root = nodes.get(name)?.root
    if (root === undefined) {
      const dir = await tempDir(`proj-cluster-${name}-`)
      roots.push(dir)
      root = dir.path
      if (options.application !== undefined) {
        const app = join(root, 'applications', 'app')
        await mkdir(app, { recursive: true })
        for (const [file, text] of Object.entries(options.application)) await writeFile(join(app, file), text)
      }
    }
    const process = await startServerProcess(root, { env: envFor(name, i, extra), timeoutMs: 30_000 })
    const node = {
      name,
      root,
      process,
      http: process.listeners.http!.url,
      mqtt: process.listeners.mqtt!.url,
    }
    nodes.set(name, node)
    return node
  }
  try {
    await Promise.all(names.map((n) => start(n)))
    await Promise.all(names.map((n) => waitReady(nodes.get(n)!.http)))
  } catch (error) {
    await stopAll()
    throw error
  }
  async function stopAll() {
    await Promise.all([...nodes.values()].map((n) => n.process.stop(5000)))
    await nats.stop()
    await Promise.all(roots.map((r) => r.remove()))
  }
  return {
    nats: nats as NatsCluster,
    node: (name: string) => nodes.get(name)!,
    start,
    stop: stopAll,
  }
}

/** The node's `/health` body. */
export async function health(http: string): Promise<{ status: string; cluster?: string; applied?: number }> {
  const res = await boundedFetch(`${http}/health`)
  return (await res.json()) as { status: string; cluster?: string }
}

/** Resolves once `/health` says the node is ready (it holds other requests until then). */
export async function waitReady(http: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      const h = await health(http)
      if (h.cluster === 'ready') return
      if (h.cluster === 'failed') throw new Error(`node ${http} failed`)
    } catch (error) {
      if ((error as Error).message.includes('failed')) throw error
    }
    if (Date.now() > deadline) throw new Error(`node ${http} not ready after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** Bound on each test request: a request the server never answers fails naming itself, not the test's timeout. */
const REQUEST_TIMEOUT_MS = 15_000

/** `fetch` that fails after {@link REQUEST_TIMEOUT_MS} with the method and URL in the error. */
async function boundedFetch(url: string, init: RequestInit = {}): Promise<Response> {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
  } catch (error) {
    throw new Error(`${init.method ?? 'GET'} ${url}: ${(error as Error).message}`, { cause: error })
  }
}

/** GET a record: status, body and ETag. */
export async function getRecord(http: string, path: string) {
  const res = await boundedFetch(`${http}/${path}`, {
    headers: { Authorization: AUTH, Accept: 'application/json' },
  })
  const body = res.status === 200 ? await res.json() : await res.text()
  return { status: res.status, body, etag: res.headers.get('etag') }
}

export async function send(http: string, method: string, path: string, body?: unknown) {
  const res = await boundedFetch(`${http}/${path}`, {
    method,
    headers: { Authorization: AUTH, 'Content-Type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  })
  await res.arrayBuffer()
  return res
}

/** `promise`, or a rejection naming `label` once `ms` passed (a write the server never answers shows which). */
export function within<T>(label: string, promise: Promise<T>, ms = REQUEST_TIMEOUT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${label}: no answer within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Prints each node's warnings and errors (a failed test shows, e.g., a write not applied in time and why). */
export function printNodeWarnings(
  cluster: { node(name: string): ClusterNodeProcess | undefined },
  names: string[],
) {
  for (const name of names) {
    const lines = cluster.node(name)?.process.output().split('\n') ?? []
    console.error(
      `node ${name}:\n${lines
        .filter((l) => /"level":(40|50)/.test(l))
        .slice(-20)
        .join('\n')}`,
    )
  }
}

type ClusterNodes = Awaited<ReturnType<typeof startClusterNodes>>

/**
 * One cluster for a describe block: started before its tests; its MQTT clients (connected as the admin)
 * and nodes stopped after them; the nodes' warnings printed when a test fails.
 */
export function useMqttCluster(names: string[], options?: Parameters<typeof startClusterNodes>[1]) {
  let cluster: ClusterNodes | undefined
  const open: MqttClient[] = []
  beforeAll(async () => {
    cluster = await startClusterNodes(names, options)
  }, 60_000)
  afterAll(async () => {
    for (const c of open) c.end(true)
    await cluster?.stop()
  })
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail' && cluster !== undefined) printNodeWarnings(cluster, names)
  })
  return {
    get cluster(): ClusterNodes {
      if (cluster === undefined) throw new Error('the cluster is not started (use it inside a test)')
      return cluster
    },
    /** Ends `client` after the block (for clients connected some other way). */
    track(client: MqttClient): MqttClient {
      open.push(client)
      return client
    },
    /** An MQTT client connected to `node` as the admin, ended after the block. */
    async mqttOn(node: string, options: IClientOptions): Promise<MqttClient> {
      return this.track(await connectMqtt(this.cluster.node(node).mqtt, { ...ADMIN, ...options }))
    },
    /**
     * Connects a durable session to `node` as the admin with `listen`'s listeners attached before the
     * CONNACK (what a resumed session missed follows the CONNACK at once); resolves with what `listen`
     * returned and the CONNACK's session-present flag.
     */
    async resumeOn<T>(
      node: string,
      options: IClientOptions,
      listen: (client: MqttClient) => T,
    ): Promise<{ client: MqttClient; got: T; sessionPresent: boolean }> {
      const client = this.track(
        mqtt.connect(this.cluster.node(node).mqtt, {
          ...ADMIN,
          ...options,
          reconnectPeriod: 0,
          connectTimeout: 5000,
        }),
      )
      const got = listen(client)
      const connack = new Promise<boolean>((resolve, reject) => {
        client.once('connect', (packet) => resolve(packet.sessionPresent))
        client.once('error', reject)
      })
      return { client, got, sessionPresent: await within(`CONNACK on ${node}`, connack) }
    },
  }
}

/** Collects the payloads `client` receives, per topic; the returned function reads one topic's so far. */
export function collectPayloads(client: MqttClient): (topic: string) => string[] {
  const got = new Map<string, string[]>()
  client.on('message', (topic, payload) => {
    const list = got.get(topic) ?? []
    list.push(payload.toString())
    got.set(topic, list)
  })
  return (topic: string) => got.get(topic) ?? []
}
