import * as net from 'node:net'
import { Duplex } from 'node:stream'
import { openRuntime, type Runtime } from '@proj/resource'
import { tempDir } from '@proj/test-utils'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import mqttPacket from 'mqtt-packet'
import { afterAll, afterEach, beforeAll, vi } from 'vitest'
import { type Broker, type BrokerOptions, createBroker } from '../src/index.js'

export type Packet = mqttPacket.Packet

/** Two connected in-memory duplex streams (node:stream has no duplexPair in Node 20). */
export function duplexPair(): [Duplex, Duplex] {
  let a: Duplex
  let b: Duplex
  const make = (peer: () => Duplex) =>
    new Duplex({
      read() {},
      write(chunk, _enc, cb) {
        const p = peer()
        if (!p.destroyed) p.push(chunk)
        cb()
      },
      final(cb) {
        const p = peer()
        if (!p.destroyed) p.push(null)
        cb()
      },
      destroy(err, cb) {
        const p = peer()
        if (!p.destroyed) p.destroy()
        cb(err)
      },
    })
  a = make(() => b)
  b = make(() => a)
  return [a, b]
}

export interface TestRuntime {
  runtime: Runtime
  dir: string
  close(): Promise<void>
}

/** A real runtime on a fresh LMDB temp dir, anonymous access on. */
export async function openTestRuntime(
  options: Record<string, unknown> = {},
  dir?: string,
): Promise<TestRuntime> {
  const tmp = dir === undefined ? await tempDir('mqtt-test-') : null
  const path = dir ?? tmp!.path
  const runtime = await openRuntime({
    path,
    allowAnonymous: true,
    auth: { scramIterations: 4096, scryptCost: 1024 },
    ...options,
  } as never)
  return {
    runtime,
    dir: path,
    async close() {
      await runtime.close()
      await tmp?.remove()
    },
  }
}

export interface BrokerFixture {
  /** The file's runtime, opened in beforeAll and closed in afterAll. */
  readonly rt: TestRuntime
  /** The broker the last `make()` created; closed after each test. */
  readonly broker: Broker
  /** Creates this test's broker on `on` (the file's runtime unless given). */
  make(options?: Record<string, unknown>, on?: TestRuntime): Broker
}

/**
 * Registers the hooks most in-memory suites share: one runtime per file, one broker per test
 * (closed after it, with real timers restored).
 */
export function useBrokerFixture(): BrokerFixture {
  let rt: TestRuntime | undefined
  let broker: Broker | undefined
  beforeAll(async () => {
    rt = await openTestRuntime()
  })
  afterAll(async () => {
    await rt?.close()
  })
  afterEach(async () => {
    vi.useRealTimers()
    await broker?.close()
  })
  const runtime = (): TestRuntime => {
    if (rt === undefined) throw new Error('runtime not open yet (use it inside a test or hook)')
    return rt
  }
  return {
    get rt() {
      return runtime()
    },
    get broker() {
      if (broker === undefined) throw new Error('no broker yet: call make() first')
      return broker
    },
    make(options = {}, on = runtime()) {
      broker = createBroker({ runtime: on.runtime, ...options })
      return broker
    },
  }
}

export interface MqttJsClients {
  /** Connects an MQTT.js client to `tb` with reconnects off, and tracks it. */
  connect(tb: { port: number }, options?: IClientOptions): Promise<MqttClient>
  /** Tracks a client made some other way. */
  add(client: MqttClient): void
  /** Force-ends every tracked client (afterAll does this too). */
  endAll(): Promise<void>
}

/** MQTT.js clients for one suite or describe block, ended in its afterAll at the latest. */
export function useMqttJsClients(): MqttJsClients {
  const clients: MqttClient[] = []
  const endAll = async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)))
  }
  afterAll(endAll)
  return {
    async connect(tb, options = {}) {
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${tb.port}`, { reconnectPeriod: 0, ...options })
      clients.push(c)
      return c
    },
    add(client) {
      clients.push(client)
    },
    endAll,
  }
}

export interface TestBroker {
  broker: Broker
  runtime: Runtime
  port: number
  server: net.Server
  /** Closes the server, the broker and (when owned) the runtime and its temp dir. */
  close(): Promise<void>
}

/** A broker on a real TCP server at 127.0.0.1, port 0. */
export async function startBroker(
  options: Partial<BrokerOptions> = {},
  rt?: TestRuntime,
): Promise<TestBroker> {
  const owned = rt === undefined
  const test = rt ?? (await openTestRuntime())
  const broker = createBroker({ runtime: test.runtime, ...options })
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    broker.handle(socket, {
      transport: 'tcp',
      remoteAddress: socket.remoteAddress,
      remotePort: socket.remotePort,
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  return {
    broker,
    runtime: test.runtime,
    port,
    server,
    async close() {
      server.close()
      await broker.close()
      for (const s of sockets) s.destroy()
      if (owned) await test.close()
    },
  }
}

export interface TcpBrokerFixture {
  /** The broker `start()` made (throws before it). */
  readonly tb: TestBroker
  /** Starts the broker on a TCP server at 127.0.0.1, port 0, on a fresh runtime. */
  start(options?: Partial<BrokerOptions>): Promise<TestBroker>
  /** Connects an MQTT.js client (reconnects off) to the broker; ended before the broker closes. */
  connect(options?: IClientOptions, allowRetries?: boolean): Promise<MqttClient>
}

/**
 * A TCP broker with the MQTT.js clients that talk to it. `'test'`: each test calls `start()`, and its
 * clients and broker are closed after it. `'file'`: started before the file's tests, closed after them.
 */
export function useTcpBroker(scope: 'test' | 'file', options: Partial<BrokerOptions> = {}): TcpBrokerFixture {
  let tb: TestBroker | undefined
  const clients: MqttClient[] = []
  const start = async (opts: Partial<BrokerOptions> = options) => {
    tb = await startBroker(opts)
    return tb
  }
  const close = async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)))
    await tb?.close()
    tb = undefined
  }
  if (scope === 'file') {
    beforeAll(async () => {
      await start()
    })
    afterAll(close)
  } else {
    afterEach(close)
  }
  const broker = (): TestBroker => {
    if (tb === undefined) throw new Error('no broker: call start() first')
    return tb
  }
  return {
    get tb() {
      return broker()
    },
    start,
    async connect(opts = {}, allowRetries = true) {
      const url = `mqtt://127.0.0.1:${broker().port}`
      const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, ...opts }, allowRetries)
      clients.push(c)
      return c
    },
  }
}

export interface Closers {
  /** Closes `closeable` after the test, the last one added first; returns it. */
  add<T extends { close(): Promise<void> }>(closeable: T): T
  /** A raw TCP client of `tb`, ended after the test. */
  tcp(tb: { port: number }, protocolVersion: 3 | 4 | 5): Promise<RawClient>
  /** Closes what is open now, as after the test (a test that restarts its broker). */
  closeAll(): Promise<void>
}

/** What a test opens (runtimes, brokers, clients, folders), closed after it in reverse order. */
export function useClosers(): Closers {
  const opened: { close(): Promise<void> }[] = []
  const closeAll = async () => {
    for (const o of opened.splice(0).reverse()) await o.close()
  }
  afterEach(async () => {
    vi.useRealTimers()
    await closeAll()
  })
  const add = <T extends { close(): Promise<void> }>(closeable: T): T => {
    opened.push(closeable)
    return closeable
  }
  return {
    add,
    async tcp(tb, protocolVersion) {
      const c = await RawClient.tcp(tb.port, protocolVersion)
      add({ close: async () => c.end() })
      return c
    },
    closeAll,
  }
}

/** A raw MQTT client over any duplex stream: send packets or bytes, await the packets that come back. */
export class RawClient {
  readonly packets: Packet[] = []
  closed = false
  private readonly parser: ReturnType<typeof mqttPacket.parser>
  private waiters: (() => void)[] = []
  readonly closedPromise: Promise<void>

  constructor(
    readonly stream: Duplex,
    readonly protocolVersion: 3 | 4 | 5 = 4,
  ) {
    this.parser = mqttPacket.parser({ protocolVersion })
    this.parser.on('packet', (p) => {
      this.packets.push(p)
      this.wake()
    })
    this.parser.on('error', () => {})
    stream.on('data', (chunk: Buffer) => this.parser.parse(chunk))
    this.closedPromise = new Promise((resolve) => {
      const done = () => {
        this.closed = true
        this.wake()
        resolve()
      }
      stream.on('close', done)
      stream.on('end', done)
      stream.on('error', () => {})
    })
  }

  static tcp(port: number, protocolVersion: 3 | 4 | 5 = 4): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(new RawClient(socket, protocolVersion)))
      socket.once('error', reject)
    })
  }

  private wake() {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  send(packet: Packet | Buffer): void {
    const bytes = Buffer.isBuffer(packet)
      ? packet
      : mqttPacket.generate(packet, { protocolVersion: this.protocolVersion })
    this.stream.write(bytes)
  }

  /** Resolves with (and removes) the first received packet matching `cmd`/`pred`. */
  async next<C extends Packet['cmd']>(
    cmd: C,
    pred: (p: Extract<Packet, { cmd: C }>) => boolean = () => true,
    timeoutMs = 3000,
  ): Promise<Extract<Packet, { cmd: C }>> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const i = this.packets.findIndex((p) => p.cmd === cmd && pred(p as Extract<Packet, { cmd: C }>))
      if (i >= 0) return this.packets.splice(i, 1)[0] as Extract<Packet, { cmd: C }>
      if (this.closed) throw new Error(`closed while waiting for ${cmd}`)
      const left = deadline - Date.now()
      if (left <= 0)
        throw new Error(`timed out waiting for ${cmd}; got ${this.packets.map((p) => p.cmd).join(',')}`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(t)
          resolve()
        })
      })
    }
  }

  /** Waits for the server to close the stream. */
  async waitClosed(timeoutMs = 3000): Promise<void> {
    await Promise.race([
      this.closedPromise,
      new Promise((_, reject) => setTimeout(() => reject(new Error('not closed')), timeoutMs)),
    ])
  }

  async connect(fields: Partial<mqttPacket.IConnectPacket> = {}): Promise<mqttPacket.IConnackPacket> {
    this.send({
      cmd: 'connect',
      protocolId: this.protocolVersion === 3 ? 'MQIsdp' : 'MQTT',
      protocolVersion: this.protocolVersion,
      clean: true,
      clientId: `raw-${Math.random().toString(36).slice(2)}`,
      keepalive: 0,
      ...fields,
    } as mqttPacket.IConnectPacket)
    return this.next('connack')
  }

  end(): void {
    this.stream.destroy()
  }
}

/** A raw client on one end of an in-memory pair whose other end the broker serves. */
export function pairClient(broker: Broker, protocolVersion: 3 | 4 | 5 = 4): RawClient {
  const [client, server] = duplexPair()
  broker.handle(server, { transport: 'tcp' })
  return new RawClient(client, protocolVersion)
}
