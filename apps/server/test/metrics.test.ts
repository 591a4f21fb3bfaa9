import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempDir } from '@proj/test-utils'
import { EventSource } from 'eventsource'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { WebSocket } from 'ws'
import { basic, connectMqtt, nextMessage } from './helpers/clients.js'
import { addUser, type ServerProcess, startServerProcess } from './helpers/server-process.js'

const ADMIN = { username: 'admin', password: 'admin-secret' }

/** The value of one sample of a Prometheus text exposition, or undefined when it is not there. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const found = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]))
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(m[3])
  }
  return undefined
}

describe('GET /metrics (built server, real clients)', () => {
  let root: Awaited<ReturnType<typeof tempDir>>
  let server: ServerProcess
  let http: string
  let mqttUrl: string
  const clients: MqttClient[] = []
  const admin = basic(ADMIN.username, ADMIN.password)

  const scrape = async (authorization = admin) => {
    const res = await fetch(`${http}/metrics`, { headers: { authorization } })
    expect(res.status).toBe(200)
    return res.text()
  }

  beforeAll(async () => {
    root = await tempDir('proj-server-metrics-')
    await writeFile(
      join(root.path, 'config.yaml'),
      // no $SYS topics: they are retained topics too, and the counts below are exact
      ['roles:', '  monitor: {}', 'metrics:', '  access: monitor', 'sys:', '  interval: 0', ''].join('\n'),
    )
    for (const [name, role] of [
      ['prom', 'monitor'],
      ['viewer', 'user'],
    ]) {
      await addUser(root.path, name!, `${name}-pw`, '--role', role!)
    }
    server = await startServerProcess(root.path, {
      env: { ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password },
    })
    http = server.listeners.http!.url
    mqttUrl = server.listeners.mqtt!.url
  })

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
    const code = await server?.stop()
    await root?.remove()
    expect(code, server?.output()).toBe(0)
  })

  it('asks for credentials, refuses other roles, and serves the configured role and super users', async () => {
    const anonymous = await fetch(`${http}/metrics`)
    expect(anonymous.status).toBe(401)
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Basic/)
    const viewer = await fetch(`${http}/metrics`, {
      headers: { authorization: basic('viewer', 'viewer-pw') },
    })
    expect(viewer.status).toBe(403)
    const refused = await viewer.text()
    expect(refused).not.toContain('proj_')
    const prom = await scrape(basic('prom', 'prom-pw'))
    expect(prom).toContain('# TYPE proj_mqtt_messages_received_total counter')
    expect(await scrape()).toContain('# TYPE proj_mqtt_connections gauge')
  })

  it('counts connections, messages, bytes, refusals and auth failures from real MQTT clients', async () => {
    const before = await scrape()
    const received = (qos: string) =>
      sample(before, 'proj_mqtt_messages_received_total', { door: 'tcp', qos }) ?? 0
    const sent = (text: string) =>
      ['0', '1', '2'].reduce(
        (n, qos) => n + (sample(text, 'proj_mqtt_messages_sent_total', { door: 'tcp', qos }) ?? 0),
        0,
      )

    const sub = await connectMqtt(mqttUrl, { ...ADMIN, protocolVersion: 5, clientId: 'metrics-sub' })
    clients.push(sub)
    await sub.subscribeAsync('sensors/#', { qos: 1 })
    const pub = await connectMqtt(mqttUrl, {
      username: 'viewer',
      password: 'viewer-pw',
      clientId: 'metrics-pub',
    })
    clients.push(pub)
    const got: string[] = []
    sub.on('message', (topic) => got.push(topic))
    for (let i = 0; i < 3; i++) await pub.publishAsync(`sensors/q0/${i}`, 'x', { qos: 0 })
    for (let i = 0; i < 2; i++) await pub.publishAsync(`sensors/q1/${i}`, 'x', { qos: 1 })
    // the last one doubles as a barrier: everything before it was delivered first
    const last = nextMessage(sub, 'sensors/last')
    await pub.publishAsync('sensors/last', 'x', { qos: 1 })
    await last
    expect(got).toHaveLength(6)

    // a v5 publish the role may not make ($-topics): refused with PUBACK 0x87 and counted as dropped
    const v5 = await connectMqtt(mqttUrl, { username: 'viewer', password: 'viewer-pw', protocolVersion: 5 })
    clients.push(v5)
    await expect(v5.publishAsync('$private/x', 'no', { qos: 1 })).rejects.toThrow()
    await expect(connectMqtt(mqttUrl, { username: 'viewer', password: 'wrong' })).rejects.toThrow()

    const after = await scrape()
    expect(sample(after, 'proj_mqtt_messages_received_total', { door: 'tcp', qos: '0' })).toBe(
      received('0') + 3,
    )
    // QoS 1: three from the v3.1.1 publisher, one refused from the v5 one
    expect(sample(after, 'proj_mqtt_messages_received_total', { door: 'tcp', qos: '1' })).toBe(
      received('1') + 4,
    )
    expect(sent(after)).toBe(sent(before) + 6)
    expect(sample(after, 'proj_mqtt_messages_dropped_total', { reason: 'refused' })).toBe(
      (sample(before, 'proj_mqtt_messages_dropped_total', { reason: 'refused' }) ?? 0) + 1,
    )
    expect(sample(after, 'proj_mqtt_auth_failures_total')).toBe(
      (sample(before, 'proj_mqtt_auth_failures_total') ?? 0) + 1,
    )
    expect(sample(after, 'proj_mqtt_connects_total', { door: 'tcp' })).toBe(
      (sample(before, 'proj_mqtt_connects_total', { door: 'tcp' }) ?? 0) + 3,
    )
    expect(sample(after, 'proj_mqtt_connections', { door: 'tcp', protocol: '5' })).toBe(2)
    expect(sample(after, 'proj_mqtt_connections', { door: 'tcp', protocol: '4' })).toBe(1)
    expect(sample(after, 'proj_mqtt_subscriptions')).toBe(1)
    expect(sample(after, 'proj_network_received_bytes_total', { listener: 'mqtt' })).toBeGreaterThan(
      sample(before, 'proj_network_received_bytes_total', { listener: 'mqtt' }) ?? 0,
    )
    expect(sample(after, 'proj_network_sent_bytes_total', { listener: 'http' })).toBeGreaterThan(0)
    // QoS 1 messages are logged, so they were committed and fsynced
    expect(sample(after, 'proj_storage_commit_seconds_count')).toBeGreaterThan(0)
    expect(sample(after, 'proj_storage_fsync_seconds_count')).toBeGreaterThan(0)
    expect(sample(after, 'proj_storage_commit_writes_sum')).toBeGreaterThanOrEqual(3)
    expect(sample(after, 'proj_changelog_events')).toBeGreaterThanOrEqual(3)
    // prom-client's default metrics: event-loop lag and GC pauses
    expect(sample(after, 'proj_nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0)
    expect(after).toContain('# TYPE proj_nodejs_gc_duration_seconds histogram')
  })

  it('counts the HTTP doors: streams open, 401s by door, messages in and out (fetch, ws, EventSource)', async () => {
    const before = await scrape()
    const delta = (text: string, name: string, labels: Record<string, string> = {}) =>
      (sample(text, name, labels) ?? 0) - (sample(before, name, labels) ?? 0)
    const login = await fetch(`${http}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(ADMIN),
    })
    const { token } = (await login.json()) as { token: string }

    // a browser's way in: the token as ?access_token= on an EventSource and a WebSocket
    const sse = new EventSource(`${http}/chat/room?access_token=${encodeURIComponent(token)}`)
    const sseMessages: unknown[] = []
    sse.addEventListener('message', (e) => sseMessages.push(JSON.parse(e.data)))
    const ws = new WebSocket(
      `${http.replace('http', 'ws')}/chat/room?access_token=${encodeURIComponent(token)}`,
    )
    const wsMessages: unknown[] = []
    ws.on('message', (data) => wsMessages.push(JSON.parse(String(data))))
    try {
      await Promise.all([
        new Promise<void>((resolve, reject) => {
          sse.onopen = () => resolve()
          sse.onerror = (e) => reject(new Error(`SSE failed: ${e.message}`))
        }),
        new Promise((resolve, reject) => {
          ws.once('open', resolve)
          ws.once('error', reject)
        }),
      ])
      const open = await vi.waitFor(async () => {
        const text = await scrape()
        expect(sample(text, 'proj_http_connections', { door: 'sse' })).toBe(1)
        expect(sample(text, 'proj_http_connections', { door: 'ws' })).toBe(1)
        return text
      })
      expect(delta(open, 'proj_http_connects_total', { door: 'sse' })).toBe(1)
      expect(delta(open, 'proj_http_connects_total', { door: 'ws' })).toBe(1)
      expect(delta(open, 'proj_subscriptions')).toBe(2)

      // in: one WebSocket message (a publish on chat/room) and two REST writes; out: that message to both streams
      ws.send(JSON.stringify({ text: 'hi' }))
      const put = await fetch(`${http}/Dog/from-rest`, {
        method: 'PUT',
        headers: { authorization: admin, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'from rest' }),
      })
      expect(put.status).toBe(201)
      const del = await fetch(`${http}/Dog/from-rest`, {
        method: 'DELETE',
        headers: { authorization: admin },
      })
      expect(del.status).toBe(204)
      await vi.waitFor(() => {
        expect(sseMessages).toHaveLength(1)
        expect(wsMessages).toHaveLength(1)
      })

      // 401 through each door
      const wrong = basic('viewer', 'not-the-password')
      expect((await fetch(`${http}/Dog/from-rest`, { headers: { authorization: wrong } })).status).toBe(401)
      const badLogin = await fetch(`${http}/login`, { method: 'POST', headers: { authorization: wrong } })
      expect(badLogin.status).toBe(401)
      const badStream = await fetch(`${http}/chat/room?access_token=bogus`, {
        headers: { accept: 'text/event-stream' },
      })
      expect(badStream.status).toBe(401)
      const badSocket = new WebSocket(`${http.replace('http', 'ws')}/chat/room?access_token=bogus`)
      // terminating it after the answer makes ws report an error: expected here
      badSocket.on('error', () => {})
      const refused = await new Promise<number>((resolve) =>
        badSocket.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)),
      )
      badSocket.terminate()
      expect(refused).toBe(401)
    } finally {
      sse.close()
      ws.close()
    }

    const after = await vi.waitFor(async () => {
      const text = await scrape()
      expect(sample(text, 'proj_http_connections', { door: 'sse' })).toBe(0)
      expect(sample(text, 'proj_http_connections', { door: 'ws' })).toBe(0)
      return text
    })
    expect(delta(after, 'proj_http_messages_received_total', { door: 'ws' })).toBe(1)
    expect(delta(after, 'proj_http_messages_received_total', { door: 'rest' })).toBe(2)
    expect(delta(after, 'proj_http_messages_sent_total', { door: 'ws' })).toBe(1)
    expect(delta(after, 'proj_http_messages_sent_total', { door: 'sse' })).toBe(1)
    for (const door of ['rest', 'login', 'ws', 'sse'])
      expect(delta(after, 'proj_auth_failures_total', { door }), door).toBe(1)
    expect(delta(after, 'proj_auth_failures_total', { door: 'mqtt' })).toBe(0)
    expect(delta(after, 'proj_subscriptions')).toBe(0)
  })

  it('counts records per table and retained topics; the same registry as JSON', async () => {
    for (const id of ['1', '2']) {
      const res = await fetch(`${http}/Dog/${id}`, {
        method: 'PUT',
        headers: { authorization: admin, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `dog ${id}` }),
      })
      expect(res.status).toBe(201)
    }
    const pub = await connectMqtt(mqttUrl, ADMIN)
    clients.push(pub)
    await pub.publishAsync('plain/retained', '21.5', { qos: 1, retain: true })
    const res = await fetch(`${http}/metrics`, {
      headers: { authorization: admin, accept: 'application/json' },
    })
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    const metrics = (await res.json()) as {
      name: string
      values: { value: number; labels: Record<string, string> }[]
    }[]
    const byName = new Map(metrics.map((m) => [m.name, m]))
    expect(byName.get('proj_table_records')?.values).toContainEqual(
      expect.objectContaining({ labels: { table: 'Dog' }, value: 2 }),
    )
    expect(byName.get('proj_retained_topics')?.values[0]?.value).toBe(1)
  })
})

describe('metrics configuration', () => {
  it('metrics.access: open serves anyone; metrics.enabled: false answers 404', async () => {
    const root = await tempDir('proj-server-metrics-open-')
    try {
      const open = await startServerProcess(root.path, {
        args: ['--set', 'metrics.access=open'],
        env: { ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password },
      })
      try {
        const res = await fetch(`${open.listeners.http!.url}/metrics`)
        expect(res.status).toBe(200)
        expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
      } finally {
        expect(await open.stop()).toBe(0)
      }
      const off = await startServerProcess(root.path, {
        args: ['--set', 'metrics.enabled=false'],
        env: { ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password },
      })
      try {
        // no metrics route: a REST path like any other, with no table behind it
        const res = await fetch(`${off.listeners.http!.url}/metrics`, {
          headers: { authorization: basic(ADMIN.username, ADMIN.password) },
        })
        expect(res.status).toBe(404)
      } finally {
        expect(await off.stop()).toBe(0)
      }
    } finally {
      await root.remove()
    }
  })
})

describe('session queues, drops and subscriptions through /metrics (built server, MQTT.js)', () => {
  let root: Awaited<ReturnType<typeof tempDir>>
  let server: ServerProcess
  let http: string
  let mqttUrl: string
  const clients: MqttClient[] = []

  const scrape = async () => {
    const res = await fetch(`${http}/metrics`)
    expect(res.status).toBe(200)
    return res.text()
  }
  const dropped = (text: string, reason: string) =>
    sample(text, 'proj_mqtt_messages_dropped_total', { reason }) ?? 0

  beforeAll(async () => {
    root = await tempDir('proj-server-metrics-queues-')
    await writeFile(
      join(root.path, 'config.yaml'),
      ['metrics:', '  access: open', 'sys:', '  interval: 0', 'mqtt:', '  maxQueued: 3', ''].join('\n'),
    )
    server = await startServerProcess(root.path, {
      env: { ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password },
    })
    http = server.listeners.http!.url
    mqttUrl = server.listeners.mqtt!.url
  })

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
    const code = await server?.stop()
    await root?.remove()
    expect(code, server?.output()).toBe(0)
  })

  it('a subscriber that does not acknowledge: one in flight, mqtt.maxQueued queued, then queue_full; kept while away', async () => {
    const before = await scrape()
    expect(sample(before, 'proj_mqtt_sessions')).toBe(0)
    expect(sample(before, 'proj_subscriptions')).toBe(0)
    const stalled = await connectMqtt(mqttUrl, {
      ...ADMIN,
      protocolVersion: 5,
      clientId: 'metrics-stalled',
      clean: false,
      // a window of one: the second message waits in the session's queue
      properties: { sessionExpiryInterval: 300, receiveMaximum: 1 },
    })
    clients.push(stalled)
    // MQTT.js sends the PUBACK from this callback: never called, never acknowledged
    stalled.handleMessage = () => {}
    const got: string[] = []
    stalled.on('message', (topic) => got.push(topic))
    await stalled.subscribeAsync('queue/#', { qos: 1 })
    const pub = await connectMqtt(mqttUrl, { ...ADMIN, clientId: 'metrics-queue-pub' })
    clients.push(pub)
    for (let i = 0; i < 6; i++) await pub.publishAsync(`queue/${i}`, String(i), { qos: 1 })

    // 1 sent, 3 queued (mqtt.maxQueued), the last 2 dropped
    const during = await vi.waitFor(async () => {
      const text = await scrape()
      expect(dropped(text, 'queue_full')).toBe(dropped(before, 'queue_full') + 2)
      return text
    })
    expect(got).toEqual(['queue/0'])
    expect(sample(during, 'proj_mqtt_inflight_messages')).toBe(1)
    expect(sample(during, 'proj_mqtt_queued_messages')).toBe(3)
    expect(sample(during, 'proj_mqtt_queued_messages_max')).toBe(3)
    expect(sample(during, 'proj_mqtt_sessions')).toBe(2)
    expect(sample(during, 'proj_mqtt_durable_sessions')).toBe(1)
    expect(sample(during, 'proj_mqtt_subscriptions')).toBe(1)
    expect(sample(during, 'proj_subscriptions')).toBe(1)
    expect(sample(during, 'proj_mqtt_connections', { door: 'tcp', protocol: '5' })).toBe(1)

    // The client goes away: its durable session stays with its unacknowledged message (resent on
    // reconnect); the queue behind it is let go, since the change log replays it.
    await stalled.endAsync(true)
    const away = await vi.waitFor(async () => {
      const text = await scrape()
      expect(sample(text, 'proj_mqtt_connections', { door: 'tcp', protocol: '5' })).toBe(0)
      return text
    })
    expect(sample(away, 'proj_mqtt_sessions')).toBe(2)
    expect(sample(away, 'proj_mqtt_durable_sessions')).toBe(1)
    expect(sample(away, 'proj_mqtt_subscriptions')).toBe(1)
    expect(sample(away, 'proj_mqtt_inflight_messages')).toBe(1)
    expect(sample(away, 'proj_mqtt_queued_messages')).toBe(0)
    expect(sample(away, 'proj_mqtt_queued_messages_max')).toBe(0)
  })

  it('a message whose expiry interval passes while its durable session is away is dropped as expired', async () => {
    const before = await scrape()
    const options = {
      ...ADMIN,
      protocolVersion: 5 as const,
      clientId: 'metrics-expiring',
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    }
    const sub = await connectMqtt(mqttUrl, options)
    await sub.subscribeAsync('expiry/#', { qos: 1 })
    await sub.endAsync()
    // the broker has seen it go (else the message could still start on the old connection)
    await vi.waitFor(async () => {
      expect(sample(await scrape(), 'proj_mqtt_connections', { door: 'tcp', protocol: '5' })).toBe(0)
    })
    const pub = await connectMqtt(mqttUrl, {
      ...ADMIN,
      protocolVersion: 5,
      clientId: 'metrics-expiry-pub',
    })
    clients.push(pub)
    await pub.publishAsync('expiry/short', 'gone', { qos: 1, properties: { messageExpiryInterval: 1 } })
    const acked = Date.now()
    // the sentinel: it has no expiry and follows the expiring one in the log
    await pub.publishAsync('expiry/long', 'kept', { qos: 1 })
    // The interval has to pass on the clock; no event marks it.
    await new Promise((resolve) => setTimeout(resolve, acked + 1100 - Date.now()))

    const back = mqtt.connect(mqttUrl, { ...options, reconnectPeriod: 0 })
    clients.push(back)
    const got: string[] = []
    back.on('message', (topic) => got.push(topic))
    await nextMessage(back, 'expiry/long')
    expect(got).toEqual(['expiry/long'])
    await vi.waitFor(async () => {
      const text = await scrape()
      expect(dropped(text, 'expired')).toBe(dropped(before, 'expired') + 1)
    })
  })
})
