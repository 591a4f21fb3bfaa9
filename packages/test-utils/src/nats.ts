import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Path of the `nats-server` program, or undefined when it is not installed. */
export function natsServerPath(): string | undefined {
  for (const candidate of ['nats-server', '/usr/sbin/nats-server', '/usr/bin/nats-server']) {
    try {
      execFileSync(candidate, ['--version'], { stdio: 'ignore' })
      return candidate
    } catch {}
  }
  return undefined
}

/** Why NATS tests are skipped on this machine, or undefined when they can run. */
export const natsSkipReason: string | undefined =
  natsServerPath() === undefined
    ? 'nats-server is not installed (scripts/ensure-system-deps.sh installs the Debian package as root)'
    : undefined

/** For a describe name: ` (skipped: <why>)` when NATS tests cannot run here, else empty, so a skip says why. */
export const natsSkipNote: string = natsSkipReason === undefined ? '' : ` (skipped: ${natsSkipReason})`

/** Free loopback ports: bound to port 0 together (so they differ), then released. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer()
          server.once('error', reject)
          server.listen(0, '127.0.0.1', () => resolve(server))
        }),
    ),
  )
  const ports = servers.map((s) => (s.address() as { port: number }).port)
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  return ports
}

export interface NatsServer {
  readonly name: string
  /** `nats://127.0.0.1:<port>` */
  readonly url: string
  readonly port: number
  /** Cluster route port (cluster mode). */
  readonly routePort: number
  /** Monitoring port (`/jsz`, `/healthz`). */
  readonly httpPort: number
  readonly storeDir: string
  /** PID of the running process; undefined while stopped. */
  readonly pid: number | undefined
  readonly running: boolean
  /** Everything the server logged so far (all its runs). */
  output(): string
}

export interface NatsCluster {
  readonly servers: readonly NatsServer[]
  /** Client URLs of every server, for a client's `servers` option. */
  readonly urls: string[]
  /** Kills server `i` (SIGKILL by default); its store dir stays for a restart. */
  kill(i: number, signal?: NodeJS.Signals): Promise<void>
  /** Starts server `i` again on the same ports and store dir; resolves once its JetStream has a meta leader. */
  restart(i: number): Promise<void>
  /** Resolves once every running server reports a JetStream meta leader. */
  ready(timeoutMs?: number): Promise<void>
  /** Stops every server (SIGTERM, SIGKILL after 5 s) and removes the store dirs. */
  stop(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

interface ServerSlot {
  name: string
  port: number
  routePort: number
  httpPort: number
  storeDir: string
  config: string
  child: ChildProcess | undefined
  exited: Promise<void> | undefined
  log: string
}

/**
 * Starts `size` nats-server processes with JetStream as one cluster on loopback (each with its own store
 * dir under a temporary folder) and resolves once JetStream has elected a meta leader. Client, route and
 * monitoring ports are picked free (routes must be known before the servers start). Stop with `stop()`
 * or `await using`. `size: 1` starts a single server (no cluster block).
 *
 * @example
 * await using nats = await startNatsCluster({ size: 3 })
 * const nc = await connect({ servers: nats.urls })
 */
export async function startNatsCluster(
  options: {
    size?: number
    name?: string
    /** More lines for every server's configuration (e.g. an `authorization` or `tls` block). */
    config?: string[]
    /** More lines inside every server's `cluster` block (e.g. `no_advertise: true`). */
    clusterConfig?: string[]
  } = {},
): Promise<NatsCluster> {
  const program = natsServerPath()
  if (program === undefined) throw new Error(natsSkipReason)
  const size = options.size ?? 3
  const root = await mkdtemp(join(tmpdir(), 'proj-nats-'))
  const ports = await freePorts(size * 3)
  const slots: ServerSlot[] = []
  for (let i = 0; i < size; i++) {
    const name = `${options.name ?? 'n'}${i + 1}`
    slots.push({
      name,
      port: ports[i]!,
      routePort: ports[size + i]!,
      httpPort: ports[2 * size + i]!,
      storeDir: join(root, name),
      config: join(root, `${name}.conf`),
      child: undefined,
      exited: undefined,
      log: '',
    })
  }
  for (const slot of slots) {
    const routes = slots.filter((s) => s !== slot).map((s) => `"nats-route://127.0.0.1:${s.routePort}"`)
    const lines = [
      `server_name: "${slot.name}"`,
      `listen: "127.0.0.1:${slot.port}"`,
      `http: "127.0.0.1:${slot.httpPort}"`,
      `jetstream { store_dir: "${slot.storeDir}" }`,
      ...(options.config ?? []),
    ]
    if (size > 1) {
      lines.push(
        `cluster { name: "proj-test"`,
        `  listen: "127.0.0.1:${slot.routePort}"`,
        ...(options.clusterConfig ?? []).map((line) => `  ${line}`),
        `  routes: [${routes.join(', ')}] }`,
      )
    }
    await writeFile(slot.config, `${lines.join('\n')}\n`)
  }

  const launch = (slot: ServerSlot) => {
    const child = spawn(program, ['-c', slot.config], { stdio: ['ignore', 'pipe', 'pipe'] })
    const append = (chunk: Buffer) => {
      slot.log += chunk
    }
    child.stdout!.on('data', append)
    child.stderr!.on('data', append)
    slot.child = child
    slot.exited = new Promise((resolve) => child.once('exit', () => resolve()))
  }

  const running = () => slots.filter((s) => s.child !== undefined)

  const ready = async (timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs
    for (const slot of running()) {
      for (;;) {
        if (await hasMetaLeader(slot.httpPort)) break
        if (slot.child?.exitCode !== null && slot.child?.exitCode !== undefined)
          throw new Error(`nats-server ${slot.name} exited:\n${slot.log}`)
        if (Date.now() > deadline)
          throw new Error(
            `nats-server ${slot.name}: no JetStream meta leader after ${timeoutMs} ms\n${slot.log}`,
          )
        await new Promise((r) => setTimeout(r, 100))
      }
    }
  }

  const kill = async (i: number, signal: NodeJS.Signals = 'SIGKILL') => {
    const slot = slots[i]!
    const child = slot.child
    if (child === undefined) return
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    await slot.exited
    slot.child = undefined
  }

  const stop = async () => {
    await Promise.all(
      slots.map(async (slot, i) => {
        const child = slot.child
        if (child === undefined) return
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
        await kill(i, 'SIGTERM')
        clearTimeout(timer)
      }),
    )
    await rm(root, { recursive: true, force: true })
  }

  for (const slot of slots) launch(slot)
  try {
    await ready()
  } catch (error) {
    await stop()
    throw error
  }

  const servers: NatsServer[] = slots.map((slot) => ({
    name: slot.name,
    url: `nats://127.0.0.1:${slot.port}`,
    port: slot.port,
    routePort: slot.routePort,
    httpPort: slot.httpPort,
    storeDir: slot.storeDir,
    get pid() {
      return slot.child?.pid
    },
    get running() {
      return slot.child !== undefined
    },
    output: () => slot.log,
  }))
  return {
    servers,
    urls: servers.map((s) => s.url),
    kill,
    async restart(i: number) {
      const slot = slots[i]!
      if (slot.child !== undefined) await kill(i)
      launch(slot)
      await ready()
    },
    ready,
    stop,
    [Symbol.asyncDispose]: stop,
  }
}

async function hasMetaLeader(httpPort: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${httpPort}/jsz`, { signal: AbortSignal.timeout(1000) })
    if (!response.ok) return false
    const body = (await response.json()) as { meta_cluster?: { leader?: string }; config?: unknown }
    // a single server has no meta cluster: JetStream is ready once /jsz answers with its config
    return body.meta_cluster === undefined ? body.config !== undefined : Boolean(body.meta_cluster.leader)
  } catch {
    return false
  }
}
