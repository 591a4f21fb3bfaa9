import { mkdir, writeFile } from 'node:fs/promises'
import { connect as netConnect, type Socket } from 'node:net'
import { join } from 'node:path'
import { tempDir } from '@proj/test-utils'
import type { MqttClient } from 'mqtt'
import mqttPacket from 'mqtt-packet'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { basic, connectMqtt, nextMessage } from './helpers/clients.js'
import { type ServerProcess, startServerProcess } from './helpers/server-process.js'

const ADMIN = { username: 'admin', password: 'admin-secret' }

/** A resource whose code fails wherever a connection reaches it. */
const RESOURCES = `
export default ({ Resource }) => ({
  Bomb: class extends Resource {
    subscribe(id, listener, options, ctx) {
      // from its own timer, resource code hands the subscriber an event no broker can send
      setTimeout(() => listener(null, undefined), 20)
      return super.subscribe(id, listener, options, ctx)
    }
    async get() {
      throw new Error('get exploded')
    }
    async *connect() {
      yield { toJSON() { throw new Error('encoder exploded') } }
    }
  },
})
`

function connectPacket(protocolVersion: 4 | 5, clientId: string): Buffer {
  return mqttPacket.generate(
    {
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion,
      clean: true,
      clientId,
      keepalive: 0,
      username: ADMIN.username,
      password: Buffer.from(ADMIN.password),
    },
    { protocolVersion },
  )
}

/** Sends CONNECT, waits for CONNACK, sends `bytes`, resolves when the server has closed the socket. */
function rawTcp(port: number, protocolVersion: 4 | 5, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const received: Buffer[] = []
    let sent = false
    const socket: Socket = netConnect(port, '127.0.0.1', () =>
      socket.write(connectPacket(protocolVersion, `raw-${protocolVersion}`)),
    )
    socket.on('data', (chunk) => {
      received.push(chunk)
      if (!sent && chunk[0] === 0x20) {
        sent = true
        socket.write(bytes)
      }
    })
    socket.on('error', () => {})
    socket.on('close', () => resolve(Buffer.concat(received)))
    setTimeout(() => reject(new Error('the server did not close the connection')), 10_000).unref()
  })
}

/** The same over MQTT-over-WebSocket (sub-protocol mqtt). */
function rawWs(url: string, bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, 'mqtt')
    let sent = false
    ws.on('open', () => ws.send(connectPacket(5, 'raw-ws')))
    ws.on('message', (data: Buffer) => {
      if (!sent && data[0] === 0x20) {
        sent = true
        ws.send(bytes)
      }
    })
    ws.on('error', () => {})
    ws.on('close', () => resolve())
    setTimeout(() => reject(new Error('the server did not close the WebSocket')), 10_000).unref()
  })
}

describe('a fault in one connection never reaches the process (built server, child process)', () => {
  let root: Awaited<ReturnType<typeof tempDir>>
  let server: ServerProcess
  let http: string
  let control: MqttClient
  const auth = basic(ADMIN.username, ADMIN.password)

  beforeAll(async () => {
    root = await tempDir('proj-server-containment-')
    const app = join(root.path, 'applications', 'faulty')
    await mkdir(app, { recursive: true })
    await writeFile(join(app, 'schema.graphql'), 'type Cat @table @export { id: ID @id name: String }\n')
    await writeFile(join(app, 'resources.js'), RESOURCES)
    server = await startServerProcess(root.path, {
      env: { ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password },
    })
    http = server.listeners.http!.url
    control = await connectMqtt(server.listeners.mqtt!.url, { ...ADMIN, clientId: 'control' })
    await control.subscribeAsync('control/#', { qos: 1 })
  })

  afterAll(async () => {
    await control?.endAsync(true).catch(() => {})
    const code = await server?.stop()
    await root?.remove()
    expect(code, server?.output()).toBe(0)
  })

  /** The process is alive, never went through its uncaught-exception handler, and still serves. */
  async function stillServing(label: string): Promise<void> {
    expect(server.child.exitCode, server.output()).toBeNull()
    expect(server.output()).not.toContain('uncaught exception')
    const got = nextMessage(control, 'control/ping', (p) => p.toString() === label)
    await control.publishAsync('control/ping', label, { qos: 1 })
    await got
    expect((await fetch(`${http}/health`)).status).toBe(200)
  }

  it.each([
    ['3.1.1 empty SUBSCRIBE over TCP', 4, '82020001'],
    ['v5 empty SUBSCRIBE over TCP', 5, '8203000100'],
    ['v5 empty UNSUBSCRIBE over TCP', 5, 'a203000100'],
  ] as const)('%s: that connection is closed', async (label, version, hex) => {
    await rawTcp(server.listeners.mqtt!.port, version, Buffer.from(hex, 'hex'))
    await stillServing(label)
  })

  it('v5 empty UNSUBSCRIBE over MQTT-over-WebSocket: that connection is closed', async () => {
    await rawWs(`${http.replace('http', 'ws')}/mqtt`, Buffer.from('a203000100', 'hex'))
    await stillServing('ws')
  })

  it('resource code calling a subscriber with a broken event: that subscriber gets DISCONNECT 0x83', async () => {
    const victim = await connectMqtt(server.listeners.mqtt!.url, {
      ...ADMIN,
      clientId: 'bomb-subscriber',
      protocolVersion: 5,
    })
    const disconnected = new Promise<number | undefined>((resolve) =>
      victim.once('disconnect', (packet) => resolve(packet.reasonCode)),
    )
    await victim.subscribeAsync('Bomb/1', { qos: 0 })
    expect(await disconnected).toBe(0x83)
    await victim.endAsync(true)
    await stillServing('bomb')
    expect(server.output()).toMatch(/internal error while handling bomb-subscriber/)
  })

  it('the same resource over REST (500, JSON body), WebSocket (1011) and SSE (ended)', async () => {
    const res = await fetch(`${http}/Bomb/1`, { headers: { Authorization: auth } })
    expect(res.status).toBe(500)
    expect(await res.json()).toMatchObject({ error: 'INTERNAL', status: 500 })

    const ws = new WebSocket(`${http.replace('http', 'ws')}/Bomb/1`, { headers: { Authorization: auth } })
    const code = await new Promise<number>((resolve) => ws.on('close', (c: number) => resolve(c)))
    expect(code).toBe(1011)

    const sse = await fetch(`${http}/Bomb/1`, {
      headers: { Authorization: auth, Accept: 'text/event-stream' },
    })
    expect(sse.status).toBe(200)
    await sse.text() // ends instead of hanging
    await stillServing('http')
  })
})
