import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempDir } from '@proj/test-utils'
import type { MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { connectMqtt, hasCommand, nextMessage, run } from './helpers/clients.js'
import { addUser, type ServerProcess, startServerProcess } from './helpers/server-process.js'

const ADMIN = { username: 'admin', password: 'admin-secret' }
const MONITOR = { username: 'prom', password: 'prom-pw' }
const VIEWER = { username: 'viewer', password: 'viewer-pw' }
const haveMosquitto = hasCommand('mosquitto_sub')

/** Every `$SYS` topic Mosquitto 2 publishes that this broker has a figure for. */
const EXPECTED = [
  'version',
  'uptime',
  'clients/total',
  'clients/maximum',
  'clients/connected',
  'clients/active',
  'clients/disconnected',
  'clients/inactive',
  'messages/received',
  'messages/sent',
  'publish/messages/received',
  'publish/messages/sent',
  'publish/messages/dropped',
  'bytes/received',
  'bytes/sent',
  'subscriptions/count',
  'retained messages/count',
  ...['messages/received', 'messages/sent', 'publish/received', 'publish/sent', 'publish/dropped']
    .concat(['bytes/received', 'bytes/sent', 'connections'])
    .flatMap((name) => ['1min', '5min', '15min'].map((w) => `load/${name}/${w}`)),
].map((t) => `$SYS/broker/${t}`)

describe('$SYS topics (built server, MQTT.js and mosquitto_sub)', () => {
  let root: Awaited<ReturnType<typeof tempDir>>
  let server: ServerProcess
  let mqttUrl: string
  let port: string
  const clients: MqttClient[] = []
  const connect = async (options: Parameters<typeof connectMqtt>[1]) => {
    const client = await connectMqtt(mqttUrl, options)
    clients.push(client)
    return client
  }

  beforeAll(async () => {
    root = await tempDir('proj-server-sys-')
    await writeFile(
      join(root.path, 'config.yaml'),
      [
        'sys:',
        '  interval: 1',
        'roles:',
        '  monitor:',
        '    topics:',
        "      - { filter: '$SYS/#', subscribe: true }",
        '',
      ].join('\n'),
    )
    for (const [user, role] of [
      [MONITOR, 'monitor'],
      [VIEWER, 'user'],
    ] as const) {
      await addUser(root.path, user.username, user.password, '--role', role)
    }
    server = await startServerProcess(root.path, {
      env: { ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password },
    })
    mqttUrl = server.listeners.mqtt!.url
    port = String(server.listeners.mqtt!.port)
  })

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
    const code = await server?.stop()
    await root?.remove()
    expect(code, server?.output()).toBe(0)
  })

  it("publishes Mosquitto's topic names as retained messages, refreshed every sys.interval", async () => {
    const admin = await connect({ ...ADMIN, clientId: 'sys-admin' })
    const latest = new Map<string, string>()
    const retained = new Set<string>()
    admin.on('message', (topic, payload, packet) => {
      latest.set(topic, String(payload))
      if (packet.retain) retained.add(topic)
    })
    await admin.subscribeAsync('$SYS/#', { qos: 0 })
    // a new subscriber gets every current value at once, as retained messages
    await vi.waitFor(() => expect([...retained].sort()).toEqual([...EXPECTED].sort()), { timeout: 5000 })
    expect(latest.get('$SYS/broker/version')).toMatch(/^proj-server version \d+\.\d+\.\d+/)
    expect(latest.get('$SYS/broker/uptime')).toMatch(/^\d+ seconds$/)
    expect(latest.get('$SYS/broker/load/bytes/received/1min')).toMatch(/^\d+\.\d\d$/)
    const uptime = (text = latest.get('$SYS/broker/uptime')!) => Number.parseInt(text, 10)
    const before = uptime()

    // live figures follow real clients: a second connection, ten messages, one subscription
    const received = Number(latest.get('$SYS/broker/messages/received'))
    const other = await connect({ ...VIEWER, clientId: 'sys-viewer' })
    await other.subscribeAsync('sensors/#')
    for (let i = 0; i < 10; i++) await other.publishAsync('sensors/t', String(i), { qos: 1 })
    const number = (topic: string) => Number(latest.get(`$SYS/broker/${topic}`))
    await vi.waitFor(
      () => {
        expect(number('clients/connected')).toBeGreaterThanOrEqual(2)
        expect(number('messages/received')).toBeGreaterThanOrEqual(received + 10)
        expect(number('subscriptions/count')).toBeGreaterThanOrEqual(2)
        expect(number('load/messages/received/1min')).toBeGreaterThan(0)
        expect(number('bytes/received')).toBeGreaterThan(0)
        expect(uptime()).toBeGreaterThan(before)
      },
      { timeout: 8000, interval: 100 },
    )
    // a plain `#` never matches `$` topics [MQTT-4.7.2-1]; the sentinel shows the `#` subscription is live
    const all = await connect({ ...ADMIN, clientId: 'sys-hash' })
    const topics: string[] = []
    all.on('message', (topic) => topics.push(topic))
    await all.subscribeAsync('#')
    const sentinel = nextMessage(all, 'sensors/sentinel')
    // the next refresh reaches the $SYS subscriber, and would reach `all` before the sentinel if it leaked
    await nextMessage(admin, '$SYS/broker/uptime', (_, packet) => !packet.retain)
    await admin.publishAsync('sensors/sentinel', 'x', { qos: 1 })
    await sentinel
    expect(topics.filter((t) => t.startsWith('$'))).toEqual([])
  })

  it('serves a role that allows $SYS/# and refuses one that does not (MQTT.js v5 and v3.1.1)', async () => {
    const monitor = await connect({ ...MONITOR, protocolVersion: 5 })
    const version = nextMessage(monitor, '$SYS/broker/version')
    const granted = await monitor.subscribeAsync('$SYS/#')
    expect(granted[0]?.qos).toBe(0)
    expect(String((await version).payload)).toMatch(/^proj-server version/)

    const v5 = await connect({ ...VIEWER, protocolVersion: 5 })
    await expect(v5.subscribeAsync('$SYS/#')).rejects.toThrow(/Not authorized/) // SUBACK 0x87
    const v4 = await connect({ ...VIEWER, protocolVersion: 4 })
    // SUBACK 0x80 (Failure), which MQTT.js reports as "Unspecified error"
    await expect(v4.subscribeAsync('$SYS/broker/uptime')).rejects.toThrow(/Unspecified error/)
  })

  it.skipIf(!haveMosquitto)(
    'reads $SYS with mosquitto_sub, and mosquitto_sub is refused without the role',
    async () => {
      const sub = (user: { username: string; password: string }, extra: string[] = []) =>
        run('mosquitto_sub', [
          '-h',
          '127.0.0.1',
          '-p',
          port,
          '-u',
          user.username,
          '-P',
          user.password,
          '-t',
          '$SYS/broker/clients/connected',
          '-C',
          '1',
          '-W',
          '5',
          '-v',
          ...extra,
        ]).done
      const allowed = await sub(MONITOR)
      expect(allowed.code, allowed.stderr).toBe(0)
      expect(allowed.stdout).toMatch(/^\$SYS\/broker\/clients\/connected \d+\n$/)
      const denied = await sub(VIEWER, ['-V', 'mqttv5'])
      expect(denied, JSON.stringify(denied)).toMatchObject({
        stdout: '',
        stderr: expect.stringMatching(/denied/i),
      })
    },
  )
})
