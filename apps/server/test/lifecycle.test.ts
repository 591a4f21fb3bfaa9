import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempDir, waitFor } from '@proj/test-utils'
import type { IClientOptions } from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { createTestCertificates, hasOpenssl } from './helpers/certs.js'
import { basic, connectMqtt } from './helpers/clients.js'
import { runCli, type ServerProcess, startServerProcess } from './helpers/server-process.js'

const roots: Awaited<ReturnType<typeof tempDir>>[] = []
const servers: ServerProcess[] = []

async function freshRoot() {
  const root = await tempDir('proj-server-life-')
  roots.push(root)
  return root.path
}

async function start(root: string, options: Parameters<typeof startServerProcess>[1] = {}) {
  const server = await startServerProcess(root, options)
  servers.push(server)
  return server
}

/**
 * A server on a fresh root with admin password 'pw', and an MQTT client logged in as admin that
 * ignores the errors of the shutdown the test is about to cause.
 */
async function startWithAdminClient(clientOptions: IClientOptions) {
  const root = await freshRoot()
  const env = { ADMIN_PASSWORD: 'pw' }
  const first = await start(root, { env })
  const client = await connectMqtt(first.listeners.mqtt!.url, {
    username: 'admin',
    password: 'pw',
    ...clientOptions,
  })
  client.on('error', () => {})
  return { root, env, first, client }
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()))
  await Promise.all(roots.splice(0).map((r) => r.remove()))
})

describe('proj-server lifecycle', () => {
  it('starts on the embedded default: a generated admin password, the Dog table, data kept across a restart', async () => {
    const root = await freshRoot()
    const first = await start(root, { env: { ADMIN_USERNAME: '', ADMIN_PASSWORD: '' } })
    const match = /created admin user 'admin' with password (\S+)/.exec(first.output())
    expect(match, first.output()).not.toBeNull()
    const auth = basic('admin', match![1]!)
    const put = await fetch(`${first.listeners.http!.url}/Dog/7`, {
      method: 'PUT',
      headers: { Authorization: auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'Laika', breed: 'Mongrel', age: 3 }),
    })
    expect(put.status).toBeLessThan(300)

    // SIGTERM: graceful, exit 0
    expect(await first.stop()).toBe(0)
    expect(first.output()).not.toMatch(/"level":(50|60)/)

    const second = await start(root)
    expect(second.output()).not.toContain('created admin user')
    const res = await fetch(`${second.listeners.http!.url}/Dog/7`, { headers: { Authorization: auth } })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ name: 'Laika', age: 3 })
    const client = await connectMqtt(second.listeners.mqtt!.url, { username: 'admin', password: match![1]! })
    await client.endAsync()
  })

  it("keeps a connected client's will across a graceful shutdown and publishes it", async () => {
    const { root, env, first, client } = await startWithAdminClient({
      clientId: 'will-owner',
      will: {
        topic: 'Dog/50',
        payload: Buffer.from(JSON.stringify({ name: 'Ghost' })),
        qos: 1,
        retain: true,
      },
    })
    expect(await first.stop()).toBe(0)
    client.end(true)
    const second = await start(root, { env })
    const body = await waitFor(
      async () => {
        const res = await fetch(`${second.listeners.http!.url}/Dog/50`, {
          headers: { Authorization: basic('admin', 'pw') },
        })
        return res.status === 200 ? res.json() : undefined
      },
      { timeoutMs: 5000, message: 'the will as record Dog/50' },
    )
    expect(body).toMatchObject({ name: 'Ghost' })
  })

  it('keeps every acknowledged write when SIGTERM arrives mid-stream', async () => {
    const { root, env, first, client } = await startWithAdminClient({ clientId: 'writer' })
    const acked = new Set<number>()
    const total = 3000
    for (let i = 0; i < total; i++) {
      client.publish(`Dog/${i}`, JSON.stringify({ age: i }), { qos: 1, retain: true }, (err) => {
        if (!err) acked.add(i)
      })
    }
    await waitFor(() => acked.size >= 100, { message: '100 PUBACKs' })
    expect(await first.stop()).toBe(0)
    client.end(true)

    const second = await start(root, { env })
    const res = await fetch(`${second.listeners.http!.url}/Dog/`, {
      headers: { Authorization: basic('admin', 'pw') },
    })
    expect(res.status).toBe(200)
    const stored = new Set(((await res.json()) as { age: number }[]).map((r) => r.age))
    const lost = [...acked].filter((i) => !stored.has(i))
    expect(lost).toEqual([])
    expect(acked.size).toBeGreaterThanOrEqual(100)
  })

  it('lets anonymous clients in when anonymous.enabled, unless mqtt.requireAuthentication', async () => {
    const root = await freshRoot()
    const open = await start(root, { args: ['--anonymous'] })
    const client = await connectMqtt(open.listeners.mqtt!.url, { protocolVersion: 5 })
    await client.publishAsync('Dog/1', JSON.stringify({ name: 'Anon' }), { qos: 1, retain: true })
    await client.endAsync()
    const res = await fetch(`${open.listeners.http!.url}/Dog/1`)
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ name: 'Anon' })
    expect(await open.stop()).toBe(0)

    const strict = await start(root, {
      env: { PROJ_ANONYMOUS_ENABLED: 'true', PROJ_MQTT_REQUIREAUTHENTICATION: 'true' },
    })
    const refused = await connectMqtt(strict.listeners.mqtt!.url, { protocolVersion: 5 }).catch((e) => e)
    expect(refused).toBeInstanceOf(Error)
    expect([0x86, 0x87]).toContain(refused.code)
    expect((await fetch(`${strict.listeners.http!.url}/Dog/1`)).status).toBe(200)
  })

  it('loads applications from <root>/applications and hands them server.mqtt.events', async () => {
    const root = await freshRoot()
    const app = join(root, 'applications', 'kennel')
    await mkdir(app, { recursive: true })
    await writeFile(join(app, 'schema.graphql'), 'type Cat @table @export { id: ID @id name: String }\n')
    await writeFile(
      join(app, 'resources.js'),
      [
        'export default ({ Resource, context }) => {',
        '  const { server } = context',
        '  const seen = []',
        "  server.mqtt.events.on('connected', (session) => seen.push(session.clientId))",
        "  server.mqtt.events.on('auth-failed', () => { throw new Error('an app bug must not break the broker') })",
        '  return {',
        '    Connections: class extends Resource {',
        '      async get(id) {',
        '        return { id, value: { clientIds: seen, listeners: server.listeners.map((l) => l.name) }, version: 0 }',
        '      }',
        '    },',
        '  }',
        '}',
      ].join('\n'),
    )
    const server = await start(root, { env: { ADMIN_PASSWORD: 'pw' } })
    const auth = basic('admin', 'pw')
    // the built-in Dog app is not loaded once an applications folder exists
    expect(
      (await fetch(`${server.listeners.http!.url}/Dog/1`, { headers: { Authorization: auth } })).status,
    ).toBe(404)
    const put = await fetch(`${server.listeners.http!.url}/Cat/1`, {
      method: 'PUT',
      headers: { Authorization: auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'Tom' }),
    })
    expect(put.status).toBeLessThan(300)

    const refused = await connectMqtt(server.listeners.mqtt!.url, {
      username: 'admin',
      password: 'no',
    }).catch((e) => e)
    expect(refused.code).toBe(4)
    const client = await connectMqtt(server.listeners.mqtt!.url, {
      username: 'admin',
      password: 'pw',
      clientId: 'app-test',
    })
    await client.endAsync()
    const body = await waitFor(async () => {
      const res = await fetch(`${server.listeners.http!.url}/Connections/now`, {
        headers: { Authorization: auth },
      })
      const json = (await res.json()) as { clientIds?: string[] }
      return json.clientIds?.includes('app-test') ? json : undefined
    })
    expect(body).toMatchObject({ clientIds: ['app-test'], listeners: ['mqtt', 'http'] })
    expect(server.output()).toContain('server.mqtt.events listener failed')
    // the CLI's user commands load the same applications: they get a server that never listens
    const listed = await runCli(['user', 'list', '--root', root])
    expect(listed.stderr).toBe('')
    expect(listed.stdout).toMatch(/^admin\tadmin\tsuper user$/m)
  })

  it.skipIf(!hasOpenssl())(
    'with mqtt.mTLS.required refuses clients without a certificate; MQTT over WSS names the user too',
    async () => {
      const root = await freshRoot()
      await mkdir(join(root, 'certs'))
      const certs = createTestCertificates(join(root, 'certs'))
      await writeFile(
        join(root, 'config.yaml'),
        [
          'mqtt: { network: { securePort: 0 }, mTLS: { enabled: true, required: true } }',
          'http: { securePort: 0 }',
          'tls: { certificate: certs/server.pem, privateKey: certs/server.key, certificateAuthority: certs/ca.pem }',
        ].join('\n'),
      )
      const server = await start(root, { env: { ADMIN_PASSWORD: 'pw' } })
      const tls = { ca: certs.ca, servername: 'localhost', protocolVersion: 5 as const }
      const noCert = await connectMqtt(server.listeners.mqtts!.url, {
        ...tls,
        username: 'admin',
        password: 'pw',
      }).catch((e) => e)
      expect(noCert).toBeInstanceOf(Error)
      expect(noCert.code).not.toBe(0)

      const { cert, key } = certs.client('admin')
      const viaTls = await connectMqtt(server.listeners.mqtts!.url, { ...tls, cert, key })
      await viaTls.endAsync()
      const wss = `${server.listeners.https!.url.replace('https', 'wss')}/mqtt`
      const viaWss = await connectMqtt(wss, {
        ...tls,
        cert,
        key,
        wsOptions: { ca: certs.ca, cert, key },
      })
      await viaWss.endAsync()
      // HTTPS asks for a certificate but never requires one: REST without a certificate still works
      const { request } = await import('node:https')
      const status = await new Promise<number | undefined>((resolve, reject) => {
        const req = request(
          `${server.listeners.https!.url}/health`,
          { ca: certs.ca, servername: 'localhost' },
          (res) => {
            res.resume()
            resolve(res.statusCode)
          },
        )
        req.on('error', reject)
        req.end()
      })
      expect(status).toBe(200)
    },
  )

  it('fails to start with the key and the reason when the config is invalid', async () => {
    const root = await freshRoot()
    const result = await runCli(
      ['start', '--root', root, '--set', 'mqtt.network.port=99999', '--log-level', 'shouty'],
      {
        env: { PROJ_HTTP_MAXBODYSIZE: 'lots' },
      },
    )
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('invalid configuration')
    expect(result.stderr).toContain(
      "mqtt.network.port: must be an integer from 0 to 65535 or null, got '99999'",
    )
    expect(result.stderr).toContain(
      "logging.level: must be one of fatal, error, warn, info, debug, trace, silent, got 'shouty' (from --log-level)",
    )
    expect(result.stderr).toContain('http.maxBodySize: must be a size')
  })

  it('fails to start with the key when a port is taken', async () => {
    const root = await freshRoot()
    const first = await start(root)
    const port = String(first.listeners.mqtt!.port)
    const other = await freshRoot()
    const result = await runCli(
      [
        'start',
        '--root',
        other,
        '--mqtt-port',
        port,
        '--set',
        'mqtt.network.host=127.0.0.1',
        '--http-port',
        '0',
      ],
      { env: { PROJ_LOGGING_LEVEL: 'silent' } },
    )
    expect(result.code).toBe(1)
    expect(result.stderr).toContain(`mqtt.network.port: cannot listen on 127.0.0.1:${port} (EADDRINUSE)`)
  })

  it('prints the effective configuration', async () => {
    const root = await freshRoot()
    const result = await runCli(
      ['config', '--json', '--root', root, '--mqtt-port', '1999', '--set', 'changeLog.retention=1h'],
      {
        env: { PROJ_HTTP_CORS: 'https://a.example' },
      },
    )
    expect(result.code, result.stderr).toBe(0)
    const config = JSON.parse(result.stdout)
    expect(config.mqtt.network.port).toBe(1999)
    expect(config.changeLog.retention).toBe(3_600_000)
    expect(config.http.cors).toEqual(['https://a.example'])
  })
})
