import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { decode, encode } from '@proj/codec'
import { tempDir, waitFor } from '@proj/test-utils'
import { EventSource } from 'eventsource'
import type { MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { createTestCertificates, hasOpenssl, type TestCertificates } from './helpers/certs.js'
import { basic, connectMqtt, hasCommand, nextMessage, run } from './helpers/clients.js'
import { runCli, type ServerProcess, startServerProcess } from './helpers/server-process.js'

const ADMIN = { username: 'admin', password: 'admin-secret' }
const ALICE = { username: 'alice', password: 'alice-pw' }
const DEVICE = 'device-7'
const haveOpenssl = hasOpenssl()
const haveMosquitto = hasCommand('mosquitto_sub') && hasCommand('mosquitto_pub')
if (!haveMosquitto)
  console.warn(
    'mosquitto_pub/mosquitto_sub not found: skipping their tests (bash scripts/ensure-system-deps.sh)',
  )
if (!haveOpenssl) console.warn('openssl not found: skipping the TLS and mTLS tests')

describe('proj-server (built, as a child process)', () => {
  let root: Awaited<ReturnType<typeof tempDir>>
  let certs: TestCertificates | undefined
  let server: ServerProcess
  const clients: MqttClient[] = []
  let http: string
  const adminAuth = basic(ADMIN.username, ADMIN.password)

  const track = (client: MqttClient) => {
    clients.push(client)
    return client
  }

  beforeAll(async () => {
    root = await tempDir('proj-server-e2e-')
    const config = ['mqtt:', '  maxKeepAlive: 120']
    if (haveOpenssl) {
      await mkdir(join(root.path, 'certs'))
      certs = createTestCertificates(join(root.path, 'certs'))
      config.push(
        '  network: { securePort: 0 }',
        '  mTLS: { enabled: true, user: CN }',
        'http: { securePort: 0 }',
        'tls:',
        `  certificate: ${certs.serverCertPath}`,
        `  privateKey: ${certs.serverKeyPath}`,
        `  certificateAuthority: ${certs.caPath}`,
      )
    }
    await writeFile(join(root.path, 'config.yaml'), `${config.join('\n')}\n`)
    // users made with the CLI before the first start: the admin is still created (no super user yet)
    for (const [name, password] of [
      [ALICE.username, ALICE.password],
      [DEVICE, 'unused-password'],
    ] as const) {
      const added = await runCli(['user', 'add', name, '--root', root.path, '--password', password])
      // the first one says it creates the store (no server has used this root yet)
      expect(added.stderr).toMatch(name === ALICE.username ? /no store in .*data yet: creating one/ : /^$/)
      expect(added.stdout).toBe(`added user '${name}' (role user) to ${join(root.path, 'data')}\n`)
      expect(added.code).toBe(0)
    }
    server = await startServerProcess(root.path, {
      env: { ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password },
    })
    http = server.listeners.http!.url
  })

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
    const code = await server?.stop()
    await root?.remove()
    expect(code, server?.output()).toBe(0)
  })

  it('prints one line per listener and a JSON line with the chosen ports', () => {
    const out = server.output()
    expect(out).toMatch(/^listening: mqtt +mqtt:\/\/127\.0\.0\.1:\d+ /m)
    expect(out).toMatch(/^listening: http +http:\/\/127\.0\.0\.1:\d+ /m)
    expect(out).toContain("created admin user 'admin' with the password from ADMIN_PASSWORD")
    expect(server.listeners.mqtt!.port).toBeGreaterThan(0)
    expect(server.listeners.http!.services).toEqual(['rest', 'ws', 'sse', 'mqtt-ws'])
    if (certs) {
      expect(server.listeners.mqtts!.port).toBeGreaterThan(0)
      expect(server.listeners.https!.port).toBeGreaterThan(0)
    }
  })

  it('answers GET /health without credentials', async () => {
    const res = await fetch(`${http}/health`)
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ status: 'ok' })
  })

  it('serves an MQTT retained publish back over REST', async () => {
    const publisher = track(
      await connectMqtt(server.listeners.mqtt!.url, { ...ALICE, clientId: 'e2e-pub-1' }),
    )
    await publisher.publishAsync('Dog/1', JSON.stringify({ name: 'Rex', breed: 'Beagle', age: 3 }), {
      qos: 1,
      retain: true,
    })
    // PUBACK came after the commit, so the record is there at once
    const res = await fetch(`${http}/Dog/1`, {
      headers: { Authorization: adminAuth, Accept: 'application/json' },
    })
    expect(res.status).toBe(200)
    // the record names its primary key, although the publisher's payload did not
    expect(await res.json()).toEqual({ id: '1', name: 'Rex', breed: 'Beagle', age: 3 })
  })

  it('delivers a REST PUT to MQTT, SSE and WebSocket subscribers', async () => {
    const subscriber = track(
      await connectMqtt(server.listeners.mqtt!.url, { ...ALICE, clientId: 'e2e-sub-2' }),
    )
    await subscriber.subscribeAsync('Dog/2', { qos: 1 })

    const sse = new EventSource(`${http}/Dog/2`, {
      fetch: (input, init) =>
        fetch(input, { ...init, headers: { ...init?.headers, Authorization: adminAuth } }),
    })
    const sseEvents: { type: string; data: unknown }[] = []
    sse.addEventListener('put', (e) => sseEvents.push({ type: e.type, data: JSON.parse(e.data) }))
    await new Promise<void>((resolve, reject) => {
      sse.onopen = () => resolve()
      sse.onerror = (e) => reject(new Error(`SSE failed: ${e.message}`))
    })

    const ws = new WebSocket(`${http.replace('http', 'ws')}/Dog/2`, { headers: { Authorization: adminAuth } })
    const wsEvents: any[] = []
    ws.on('message', (data) => wsEvents.push(JSON.parse(String(data))))
    await new Promise((resolve, reject) => {
      ws.once('open', resolve)
      ws.once('error', reject)
    })

    let mosquitto: ReturnType<typeof run> | undefined
    if (haveMosquitto) {
      const port = String(server.listeners.mqtt!.port)
      mosquitto = run('mosquitto_sub', [
        '-h',
        '127.0.0.1',
        '-p',
        port,
        '-u',
        ALICE.username,
        '-P',
        ALICE.password,
        '-t',
        'Dog/2',
        '-C',
        '1',
        '-W',
        '8',
      ])
      // mosquitto_sub prints nothing until a message arrives: the admin API shows when it has subscribed
      await waitFor(
        async () => {
          const res = await fetch(`${http}/_admin/clients`, { headers: { Authorization: adminAuth } })
          const listed = (await res.json()) as { clientId: string; subscriptions: { filter: string }[] }[]
          return listed.some(
            (c) => c.clientId !== 'e2e-sub-2' && c.subscriptions.some((s) => s.filter === 'Dog/2'),
          )
        },
        { timeoutMs: 8000, message: 'mosquitto_sub subscribed' },
      )
    }

    const mqttMessage = nextMessage(subscriber, 'Dog/2', (p) => JSON.parse(String(p)).name === 'Fido')
    const res = await fetch(`${http}/Dog/2`, {
      method: 'PUT',
      headers: { Authorization: adminAuth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'Fido', breed: 'Collie', age: 5 }),
    })
    expect([200, 201, 204]).toContain(res.status)

    const { payload, packet } = await mqttMessage
    expect(JSON.parse(String(payload))).toEqual({ id: '2', name: 'Fido', breed: 'Collie', age: 5 })
    expect(packet.retain).toBe(false)
    await waitFor(() => sseEvents.some((e) => (e.data as any).value?.name === 'Fido'), {
      message: 'the SSE put event',
    })
    expect(sseEvents.find((e) => (e.data as any).value?.name === 'Fido')?.data).toMatchObject({
      type: 'put',
      id: '2',
      value: { id: '2', name: 'Fido', breed: 'Collie', age: 5 },
    })
    await waitFor(() => wsEvents.some((e) => e.value?.name === 'Fido'), {
      message: 'the WebSocket put event',
    })
    expect(wsEvents.find((e) => e.value?.name === 'Fido').value).toEqual({
      id: '2',
      name: 'Fido',
      breed: 'Collie',
      age: 5,
    })
    if (mosquitto) {
      const result = await mosquitto.done
      expect(result.code, result.stderr).toBe(0)
      expect(JSON.parse(result.stdout)).toMatchObject({ id: '2', name: 'Fido' })
    }
    sse.close()
    ws.close()
  })

  it('decodes a CBOR publish and delivers JSON to a JSON subscriber', async () => {
    const subscriber = track(
      await connectMqtt(server.listeners.mqtt!.url, { ...ALICE, clientId: 'e2e-json-sub' }),
    )
    await subscriber.subscribeAsync('Dog/3', { qos: 1 })
    const received = nextMessage(subscriber, 'Dog/3', (p) => p.length > 0)
    const publisher = track(
      await connectMqtt(server.listeners.mqtt!.url, {
        ...ALICE,
        clientId: 'e2e-cbor-pub',
        protocolVersion: 5,
      }),
    )
    const cbor = Buffer.from(encode({ name: 'Bolt', breed: 'Husky', age: 2 }, 'application/cbor'))
    await publisher.publishAsync('Dog/3', cbor, {
      qos: 1,
      retain: true,
      properties: { contentType: 'application/cbor' },
    })
    const { payload } = await received
    // a subscriber that asked for nothing gets JSON, whatever the publisher sent
    expect(JSON.parse(String(payload))).toEqual({ id: '3', name: 'Bolt', breed: 'Husky', age: 2 })
    const res = await fetch(`${http}/Dog/3`, { headers: { Authorization: adminAuth } })
    expect(await res.json()).toMatchObject({ name: 'Bolt' })
  })

  it('carries MQTT over WebSocket on the HTTP port', async () => {
    const wsClient = track(
      await connectMqtt(`${http.replace('http', 'ws')}/mqtt`, { ...ALICE, clientId: 'e2e-ws' }),
    )
    // listen first: the retained message may arrive together with the SUBACK
    const current = nextMessage(wsClient, 'Dog/1')
    await wsClient.subscribeAsync('Dog/1', { qos: 1 })
    const { payload, packet } = await current
    expect(packet.retain).toBe(true) // the current record, as a retained message
    expect(JSON.parse(String(payload))).toMatchObject({ id: '1', name: 'Rex' })
  })

  it('sends records over MQTT over WebSocket in the format the upgrade request accepts', async () => {
    for (const type of ['application/cbor', 'application/msgpack']) {
      const wsClient = track(
        await connectMqtt(`${http.replace('http', 'ws')}/mqtt`, {
          ...ALICE,
          clientId: `e2e-ws-${type.split('/')[1]}`,
          wsOptions: { headers: { Accept: type } },
        }),
      )
      const current = nextMessage(wsClient, 'Dog/1')
      await wsClient.subscribeAsync('Dog/1', { qos: 1 })
      const { payload } = await current
      expect(decode(payload, type), type).toMatchObject({ id: '1', name: 'Rex' })
    }
  })

  describe('authentication', () => {
    it('refuses a wrong password over MQTT', async () => {
      const error = await connectMqtt(server.listeners.mqtt!.url, {
        username: ALICE.username,
        password: 'wrong',
      }).catch((e) => e)
      expect(error).toBeInstanceOf(Error)
      expect(error.code).toBe(4) // MQTT 3.1.1 CONNACK: bad user name or password
      const v5 = await connectMqtt(server.listeners.mqtt!.url, {
        username: ALICE.username,
        password: 'wrong',
        protocolVersion: 5,
      }).catch((e) => e)
      expect(v5.code).toBe(0x86) // MQTT 5: Bad User Name or Password
    })

    it('refuses clients without credentials (anonymous is off by default)', async () => {
      const error = await connectMqtt(server.listeners.mqtt!.url, { protocolVersion: 5 }).catch((e) => e)
      expect(error).toBeInstanceOf(Error)
      expect([0x86, 0x87]).toContain(error.code)
      const res = await fetch(`${http}/Dog/1`)
      expect(res.status).toBe(401)
    })

    it('refuses a wrong password over REST', async () => {
      const res = await fetch(`${http}/Dog/1`, { headers: { Authorization: basic(ALICE.username, 'wrong') } })
      expect(res.status).toBe(401)
      expect(await res.json()).toHaveProperty('error')
    })

    it.skipIf(!haveMosquitto)('refuses a wrong password to mosquitto_pub', async () => {
      const port = String(server.listeners.mqtt!.port)
      const result = await run('mosquitto_pub', [
        '-h',
        '127.0.0.1',
        '-p',
        port,
        '-u',
        'alice',
        '-P',
        'nope',
        '-t',
        'Dog/9',
        '-m',
        '{}',
      ]).done
      expect(result.code).not.toBe(0)
      expect(result.stderr).toMatch(/not authori[sz]ed|bad user name or password/i)
    })

    it('sees a user added with the CLI while the server runs', async () => {
      const added = await runCli(['user', 'add', 'bob', '--root', root.path], { input: 'bob-pw\n' })
      expect(added.code, added.stderr).toBe(0)
      const listed = await runCli(['user', 'list', '--root', root.path, '--json'])
      expect(
        JSON.parse(listed.stdout)
          .map((u: { username: string }) => u.username)
          .sort(),
      ).toEqual(['admin', 'alice', 'bob', DEVICE].sort())
      const bob = track(
        await connectMqtt(server.listeners.mqtt!.url, { username: 'bob', password: 'bob-pw' }),
      )
      expect(bob.connected).toBe(true)
      const changed = await runCli(['user', 'passwd', 'bob', '--root', root.path, '--password', 'bob-pw-2'])
      expect(changed.code, changed.stderr).toBe(0)
      const refused = await connectMqtt(server.listeners.mqtt!.url, {
        username: 'bob',
        password: 'bob-pw',
      }).catch((e) => e)
      expect(refused.code).toBe(4)
      const deleted = await runCli(['user', 'delete', 'bob', '--root', root.path])
      expect(deleted.code).toBe(0)
      const gone = await runCli(['user', 'delete', 'bob', '--root', root.path])
      expect(gone.code).toBe(1)
      expect(gone.stderr).toContain("no user 'bob'")
    })
  })

  describe.skipIf(!haveOpenssl)('TLS', () => {
    it('accepts a TLS client with a username and password', async () => {
      const client = track(
        await connectMqtt(server.listeners.mqtts!.url, {
          ...ALICE,
          ca: certs!.ca,
          servername: 'localhost',
          clientId: 'e2e-tls',
        }),
      )
      const current = nextMessage(client, 'Dog/1')
      await client.subscribeAsync('Dog/1', { qos: 1 })
      const { payload } = await current
      expect(JSON.parse(String(payload))).toMatchObject({ name: 'Rex' })
    })

    it('names the user from the client certificate CN (mTLS), with no password', async () => {
      const { cert, key } = certs!.client(DEVICE)
      const client = track(
        await connectMqtt(server.listeners.mqtts!.url, {
          ca: certs!.ca,
          cert,
          key,
          servername: 'localhost',
          clientId: 'e2e-mtls',
          protocolVersion: 5,
        }),
      )
      await client.publishAsync('Dog/4', JSON.stringify({ name: 'Chip' }), { qos: 1, retain: true })
      const res = await fetch(`${http}/Dog/4`, { headers: { Authorization: adminAuth } })
      expect(await res.json()).toMatchObject({ name: 'Chip' })
    })

    it('refuses a certificate whose CN is not a user, when no password is given', async () => {
      const { cert, key } = certs!.client('nobody-here')
      const error = await connectMqtt(server.listeners.mqtts!.url, {
        ca: certs!.ca,
        cert,
        key,
        servername: 'localhost',
        protocolVersion: 5,
      }).catch((e) => e)
      expect(error).toBeInstanceOf(Error)
      expect([0x86, 0x87]).toContain(error.code)
    })

    it('serves REST over HTTPS', async () => {
      const { request } = await import('node:https')
      const body = await new Promise<string>((resolve, reject) => {
        const req = request(
          `${server.listeners.https!.url}/Dog/1`,
          { ca: certs!.ca, servername: 'localhost', headers: { Authorization: adminAuth } },
          (res) => {
            let text = ''
            res.on('data', (d) => (text += d))
            res.on('end', () => resolve(text))
          },
        )
        req.on('error', reject)
        req.end()
      })
      expect(JSON.parse(body)).toMatchObject({ name: 'Rex' })
    })
  })
})
