import { once } from 'node:events'
import { connect as netConnect, type Socket } from 'node:net'
import { tempDir, waitFor } from '@proj/test-utils'
import type { MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { basic, connectMqtt } from './helpers/clients.js'
import { type ServerProcess, startServerProcess } from './helpers/server-process.js'

/**
 * Connection floods (issue #12 item 7): the per-address limits reset sockets at accept, on every
 * listener together; `mqtt.maxConnections` answers CONNACK instead of dropping; a socket that sends no
 * CONNECT is closed after `mqtt.connectTimeout`. Loopback is exempt by default, so these servers list
 * no exempt addresses.
 */
const ADMIN = { username: 'admin', password: 'admin-secret' }
const env = { ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password }

function tcp(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1', () => resolve(socket))
    socket.once('error', reject)
  })
}

/**
 * Connects and sends `request`: true when the server resets or closes the socket (also before the client
 * saw it connect), false when an answer comes first.
 */
function refused(port: number, request: string | Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect(port, '127.0.0.1', () => socket.write(request))
    const done = (value: boolean) => {
      resolve(value)
      socket.destroy()
    }
    socket.on('error', () => done(true))
    socket.on('close', () => done(true))
    socket.once('data', () => done(false))
  })
}

const GET_HEALTH = 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
/** An MQTT 3.1.1 CONNECT without credentials: answered with a CONNACK (anonymous access is off). */
const CONNECT = Buffer.from('100d00044d5154540402003c000178', 'hex')

describe('connection limits (server process)', () => {
  let root: Awaited<ReturnType<typeof tempDir>>
  let server: ServerProcess
  const clients: MqttClient[] = []
  const sockets: Socket[] = []

  beforeAll(async () => {
    root = await tempDir('proj-security-limits-')
    server = await startServerProcess(root.path, {
      env,
      args: [
        '--anonymous',
        '--set',
        'connections.maxPerAddress=4',
        '--set',
        'connections.ratePerAddress=0',
        '--set',
        'connections.exempt=',
        '--set',
        'mqtt.maxConnections=2',
        '--set',
        'mqtt.connectTimeout=300',
        '--set',
        'roles={"anonymous":{"topics":[{"filter":"status/#","publish":true,"subscribe":true}]}}',
      ],
    })
  })

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
    for (const s of sockets) s.destroy()
    const code = await server?.stop()
    await root?.remove()
    expect(code, server?.output()).toBe(0)
  })

  it('closes a socket that sends no CONNECT within mqtt.connectTimeout', async () => {
    const started = performance.now()
    const idle = await tcp(server.listeners.mqtt!.port)
    sockets.push(idle)
    idle.resume()
    await once(idle, 'close')
    const elapsed = performance.now() - started
    expect(elapsed).toBeGreaterThanOrEqual(250)
    expect(elapsed).toBeLessThan(5000)
  })

  it('answers CONNACK 0x97 (v5) and 0x03 (3.1.1) past mqtt.maxConnections; the refused will is never stored or sent', async () => {
    const url = server.listeners.mqtt!.url
    const watcher = await connectMqtt(url, { clientId: 'watcher', protocolVersion: 5 })
    clients.push(watcher)
    await watcher.subscribeAsync('status/#', { qos: 1 })
    const seen: string[] = []
    watcher.on('message', (topic) => seen.push(topic))
    clients.push(await connectMqtt(url, { clientId: 'second', protocolVersion: 4 }))
    const will = { topic: 'status/refused', payload: Buffer.from('gone'), qos: 1 as const, retain: true }
    const v5 = await connectMqtt(url, { clientId: 'third', protocolVersion: 5, will }).catch((e) => e)
    expect(v5).toMatchObject({ code: 0x97 })
    const v4 = await connectMqtt(url, { clientId: 'fourth', protocolVersion: 4, will }).catch((e) => e)
    expect(v4).toMatchObject({ code: 3 })
    // a sentinel published after the refusals arrives alone: no will went out, none is retained
    await watcher.publishAsync('status/sentinel', 'x', { qos: 1 })
    await waitFor(() => seen.includes('status/sentinel'))
    expect(seen).toEqual(['status/sentinel'])
    const res = await fetch(`${server.listeners.http!.url}/status/refused`, {
      headers: { authorization: basic(ADMIN.username, ADMIN.password) },
    })
    expect(res.status).toBe(404)
  })

  it('resets connections past connections.maxPerAddress on any listener until one closes', async () => {
    // Two MQTT clients are connected. Event streams hold more places (an answer proves each was admitted)
    // until one is reset: at most two more fit under the limit of four.
    const stream = `GET /Dog/ HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nAuthorization: ${basic(ADMIN.username, ADMIN.password)}\r\n\r\n`
    const holders: Socket[] = []
    for (;;) {
      const socket = netConnect(server.listeners.http!.port, '127.0.0.1', () => socket.write(stream))
      sockets.push(socket)
      const admitted = await new Promise<boolean>((resolve) => {
        socket.on('error', () => resolve(false))
        socket.on('close', () => resolve(false))
        socket.once('data', () => resolve(true))
      })
      if (!admitted) break
      holders.push(socket)
      expect(holders.length).toBeLessThanOrEqual(2)
    }
    expect(await refused(server.listeners.http!.port, GET_HEALTH)).toBe(true)
    expect(await refused(server.listeners.mqtt!.port, CONNECT)).toBe(true)
    const mqttRefused = await connectMqtt(server.listeners.mqtt!.url, { clientId: 'over' }).catch((e) => e)
    expect(mqttRefused).toBeInstanceOf(Error)
    for (const h of holders) h.destroy()
    await waitFor(async () => !(await refused(server.listeners.http!.port, GET_HEALTH)), { intervalMs: 50 })
    await waitFor(() => /refused \d+ connection\(s\) over the per-address limits/.test(server.output()))
  })
})

describe('a connection flood from one address (server process)', () => {
  let root: Awaited<ReturnType<typeof tempDir>>
  let server: ServerProcess

  beforeAll(async () => {
    root = await tempDir('proj-security-flood-')
    server = await startServerProcess(root.path, {
      env,
      args: ['--set', 'connections.ratePerAddress=5', '--set', 'connections.exempt='],
    })
  })

  afterAll(async () => {
    const code = await server?.stop()
    await root?.remove()
    expect(code, server?.output()).toBe(0)
  })

  it('admits the rate and resets the rest at accept, then serves again; the refusals are counted', async () => {
    const attempts = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        // admitted sockets answer: HTTP with a response, MQTT with a CONNACK; refused ones are reset
        i % 3 === 0
          ? refused(server.listeners.http!.port, GET_HEALTH)
          : refused(server.listeners.mqtt!.port, CONNECT),
      ),
    )
    const resets = attempts.filter(Boolean).length
    expect(resets).toBeGreaterThanOrEqual(50)
    expect(resets).toBeLessThan(60)
    // the bucket refills at 5 a second: a client gets in again
    await waitFor(
      async () => {
        const res = await fetch(`${server.listeners.http!.url}/metrics`, {
          headers: { authorization: basic(ADMIN.username, ADMIN.password) },
        }).catch(() => null)
        if (res === null || res.status !== 200) return false
        const text = await res.text()
        const total = [...text.matchAll(/^proj_connections_refused_total\{[^}]*reason="rate"\} (\d+)/gm)]
          .map((m) => Number(m[1]))
          .reduce((a, b) => a + b, 0)
        return total >= resets
      },
      { intervalMs: 100 },
    )
  })
})
