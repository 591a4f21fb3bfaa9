import { mkdir, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { tempDir } from '@proj/test-utils'
import type { MqttClient } from 'mqtt'
import { describe, expect, it, vi } from 'vitest'
import { basic, connectMqtt } from './helpers/clients.js'
import { addUser, startServerProcess } from './helpers/server-process.js'

const ADMIN = { username: 'admin', password: 'admin-pw' }
/** The default level: what an operator sees without turning anything up. */
const DEFAULT_LEVEL = {
  PROJ_LOGGING_LEVEL: 'info',
  ...{ ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password },
}

/** The JSON log lines of a server's output. */
function lines(output: string): { level: number; msg: string; [k: string]: unknown }[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{"level"'))
    .map((l) => JSON.parse(l))
}

describe('logs at the default level (built server, real clients)', () => {
  it('logs refusals with the client id or address, rate-limited per kind', async () => {
    await using root = await tempDir('proj-server-refusals-')
    await writeFile(
      join(root.path, 'config.yaml'),
      'http:\n  maxBodySize: 1kb\nroles:\n  reader:\n    tables: { "*": { read: true } }\n',
    )
    await addUser(root.path, 'rita', 'rita-pw', '--role', 'reader')
    const server = await startServerProcess(root.path, { env: DEFAULT_LEVEL })
    const http = server.listeners.http!.url
    const mqttUrl = server.listeners.mqtt!.url
    const clients: MqttClient[] = []
    try {
      // a wrong password over MQTT and over HTTP
      await expect(
        connectMqtt(mqttUrl, { username: 'rita', password: 'wrong', clientId: 'bad-pw' }),
      ).rejects.toThrow()
      expect(
        (await fetch(`${http}/Dog/`, { headers: { authorization: basic('rita', 'nope') } })).status,
      ).toBe(401)
      // a refused write (403) and a body over http.maxBodySize (413)
      const rita = basic('rita', 'rita-pw')
      const put = (body: string) =>
        fetch(`${http}/Dog/1?access_token=secret-looking`, {
          method: 'PUT',
          headers: { authorization: rita, 'content-type': 'application/json' },
          body,
        })
      expect((await put('{"name":"Rex"}')).status).toBe(403)
      expect((await put(JSON.stringify({ name: 'x'.repeat(4096) }))).status).toBe(413)
      // two refused subscriptions: the second falls inside the interval and is only counted
      const sub = await connectMqtt(mqttUrl, {
        username: 'rita',
        password: 'rita-pw',
        clientId: 'sub-refused',
      })
      clients.push(sub)
      await expect(sub.subscribeAsync('$SYS/#')).rejects.toThrow()
      await expect(sub.subscribeAsync('$SYS/broker/uptime')).rejects.toThrow()
      // garbage on the MQTT port: closed for a protocol error
      await new Promise<void>((resolve) => {
        const socket = connect(server.listeners.mqtt!.port, '127.0.0.1', () =>
          socket.write(Buffer.from([0xf0, 0x00])),
        )
        socket.on('close', () => resolve())
        socket.on('error', () => {})
      })

      await vi.waitFor(
        () => {
          const log = lines(server.output())
          const find = (re: RegExp) => log.filter((l) => re.test(l.msg))
          expect(find(/^authentication of 'rita' from \S+ failed: wrong password$/)).not.toHaveLength(0)
          expect(find(/^mqtt: CONNECT of 'bad-pw' from \S+ refused/)).toHaveLength(1)
          expect(find(/^http: GET \/Dog\/ from \S+ answered 401$/)).toHaveLength(1)
          expect(find(/^http: PUT \/Dog\/1 from \S+ answered 403$/)).toHaveLength(1)
          expect(find(/^http: PUT \/Dog\/1 from \S+ answered 413$/)).toHaveLength(1)
          expect(find(/^mqtt: subscribe to \$SYS\/# by sub-refused refused/)).toHaveLength(1)
          expect(find(/^mqtt: subscribe to \$SYS\/broker\/uptime/)).toHaveLength(0) // rate-limited
          expect(find(/^mqtt: closing a connection from 127\.0\.0\.1: /)).toHaveLength(1)
          for (const l of log) expect(l.level).toBeLessThanOrEqual(40) // warn at most
        },
        { timeout: 5000 },
      )
      // never the password nor the query string (it may hold an access token)
      expect(server.output()).not.toContain('secret-looking')
      expect(server.output()).not.toContain('"wrong"')
    } finally {
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
      expect(await server.stop()).toBe(0)
    }
  })

  it('names each application and its tables, and says the built-in Dog records are still on disk', async () => {
    await using root = await tempDir('proj-server-apps-log-')
    const first = await startServerProcess(root.path, { env: DEFAULT_LEVEL })
    expect(lines(first.output()).map((l) => l.msg)).toContain(
      'loaded the built-in default application: tables Dog',
    )
    const res = await fetch(`${first.listeners.http!.url}/Dog/1`, {
      method: 'PUT',
      headers: { authorization: basic(ADMIN.username, ADMIN.password), 'content-type': 'application/json' },
      body: '{"name":"Rex"}',
    })
    expect(res.status).toBe(201)
    expect(await first.stop()).toBe(0)

    await mkdir(join(root.path, 'applications', 'shop'), { recursive: true })
    await writeFile(
      join(root.path, 'applications', 'shop', 'schema.graphql'),
      'type Cat @table @export { id: ID @id name: String }\n',
    )
    const second = await startServerProcess(root.path, { env: DEFAULT_LEVEL })
    try {
      const log = lines(second.output())
      expect(log.map((l) => l.msg)).toContain('loaded application shop: tables Cat')
      const warning = log.find((l) => l.level === 40 && /built-in Dog table/.test(l.msg))
      expect(warning?.msg).toContain('its 1 record(s) are still on disk')
      expect(warning?.msg).toContain(join(root.path, 'data'))
    } finally {
      expect(await second.stop()).toBe(0)
    }
  })
})
