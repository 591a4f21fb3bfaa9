// The bench-only floor brokers (bench/floor, see its README) serve every packet type S1–S6 send, so a
// change that breaks them fails here instead of silently skewing a benchmark.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import * as net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import mqtt, { type MqttClient } from 'mqtt'
import mqttPacket from 'mqtt-packet'
import { afterEach, describe, expect, it } from 'vitest'

const floorDir = fileURLToPath(new URL('../bench/floor/', import.meta.url))
const started: ChildProcess[] = []
const clients: MqttClient[] = []

afterEach(async () => {
  for (const c of clients.splice(0)) await c.endAsync(true)
  // SIGTERM lets floor-durable remove its temporary directory
  await Promise.all(started.splice(0).map(stop))
})

function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const kill = setTimeout(() => proc.kill('SIGKILL'), 5000)
    proc.once('exit', () => {
      clearTimeout(kill)
      resolve()
    })
    proc.kill('SIGTERM')
  })
}

/** Starts a floor broker on port 0 and resolves with its port once it prints `listening PORT`. */
function startFloor(name: string, args: string[] = []): Promise<{ port: number; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [join(floorDir, `${name}.mjs`), '0', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  started.push(proc)
  return new Promise((resolve, reject) => {
    let out = ''
    proc.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)))
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /listening (\d+)/.exec(out)
      if (m) resolve({ port: Number(m[1]), proc })
    })
  })
}

async function client(port: number, clientId: string): Promise<MqttClient> {
  const c = await mqtt.connectAsync({
    host: '127.0.0.1',
    port,
    clientId,
    protocolVersion: 4,
    reconnectPeriod: 0,
  })
  clients.push(c)
  return c
}

/** Resolves with the next message a client receives. */
function nextMessage(
  c: MqttClient,
): Promise<{ topic: string; payload: string; retain: boolean; qos: number }> {
  return new Promise((resolve) => {
    c.once('message', (topic, payload, packet) =>
      resolve({ topic, payload: payload.toString(), retain: packet.retain, qos: packet.qos }),
    )
  })
}

/** PINGREQ and DISCONNECT over a raw socket: PINGRESP comes back, then the broker closes. */
async function pingThenDisconnect(port: number): Promise<Buffer> {
  const sock = net.connect({ host: '127.0.0.1', port })
  const received: Buffer[] = []
  sock.on('data', (d) => received.push(d))
  const gen = (p: object) => mqttPacket.generate(p as mqttPacket.Packet, { protocolVersion: 4 })
  sock.write(
    gen({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      clientId: 'raw',
      keepalive: 60,
    }),
  )
  sock.write(gen({ cmd: 'pingreq' }))
  await new Promise<void>((resolve) => {
    const check = () => {
      if (Buffer.concat(received).length >= 6) {
        sock.off('data', check)
        resolve()
      }
    }
    sock.on('data', check)
  })
  sock.write(gen({ cmd: 'disconnect' }))
  await new Promise((resolve) => sock.once('close', resolve))
  return Buffer.concat(received)
}

describe.each(['floor-memory', 'floor-durable'])('%s', (name) => {
  it('answers CONNECT, SUBSCRIBE (exact and #), PUBLISH QoS 0/1, retained, PINGREQ and DISCONNECT', async () => {
    const { port } = await startFloor(name)
    const sub = await client(port, 'sub')
    expect(await sub.subscribeAsync('bench/1', { qos: 1 })).toEqual([{ topic: 'bench/1', qos: 1 }])
    const wild = await client(port, 'wild')
    expect(await wild.subscribeAsync('bench/#', { qos: 0 })).toEqual([{ topic: 'bench/#', qos: 0 }])
    const pub = await client(port, 'pub')

    const exact0 = nextMessage(sub)
    const wild0 = nextMessage(wild)
    await pub.publishAsync('bench/1', 'zero', { qos: 0 })
    expect(await exact0).toEqual({ topic: 'bench/1', payload: 'zero', retain: false, qos: 0 })
    expect(await wild0).toEqual({ topic: 'bench/1', payload: 'zero', retain: false, qos: 0 })

    const exact1 = nextMessage(sub)
    const wild1 = nextMessage(wild)
    const acked = await pub.publishAsync('bench/1', 'one', { qos: 1 }) // resolves on PUBACK
    expect(acked?.cmd).toBe('publish')
    expect(await exact1).toEqual({ topic: 'bench/1', payload: 'one', retain: false, qos: 1 })
    expect(await wild1).toEqual({ topic: 'bench/1', payload: 'one', retain: false, qos: 0 })

    await pub.publishAsync('ret/1', 'kept', { qos: 1, retain: true })
    const late = await client(port, 'late')
    const retained = nextMessage(late)
    await late.subscribeAsync('ret/#', { qos: 0 })
    expect(await retained).toEqual({ topic: 'ret/1', payload: 'kept', retain: true, qos: 0 })

    expect([...(await pingThenDisconnect(port))]).toEqual([0x20, 2, 0, 0, 0xd0, 0])
  })
})

describe('floor-durable', () => {
  it('keeps what it acknowledged through SIGKILL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'floor-durable-test-'))
    try {
      const first = await startFloor('floor-durable', [dir])
      const pub = await client(first.port, 'pub')
      await pub.publishAsync('ret/a', 'durable', { qos: 1, retain: true })
      first.proc.kill('SIGKILL')
      await new Promise((resolve) => first.proc.once('exit', resolve))

      const second = await startFloor('floor-durable', [dir])
      const sub = await client(second.port, 'sub')
      const retained = nextMessage(sub)
      await sub.subscribeAsync('ret/a', { qos: 1 })
      expect(await retained).toEqual({ topic: 'ret/a', payload: 'durable', retain: true, qos: 1 })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
