import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempDir } from '@proj/test-utils'
import type { MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { basic, connectMqtt } from './helpers/clients.js'
import { addUser, runCli, type ServerProcess, startServerProcess } from './helpers/server-process.js'

const ADMIN = { username: 'admin', password: 'admin-secret' }
const SCHEMA = `
type Dog @table @export {
  id: ID @primaryKey
  name: String!
  breed: String @indexed
  tags: [String]
}
type Secret @table @export { id: ID @primaryKey  code: String }
type Internal @table { id: ID @primaryKey }
`

describe('admin API /_admin/ (built server, real clients)', () => {
  let root: Awaited<ReturnType<typeof tempDir>>
  let server: ServerProcess
  let http: string
  let mqttUrl: string
  const clients: MqttClient[] = []
  const admin = basic(ADMIN.username, ADMIN.password)
  const rita = basic('rita', 'rita-pw')
  const ops = basic('ops', 'ops-pw')

  const get = (path: string, authorization?: string) =>
    fetch(`${http}${path}`, { headers: authorization ? { authorization } : {} })
  const send = (method: string, path: string, authorization: string, body?: unknown) =>
    fetch(`${http}${path}`, {
      method,
      headers: { authorization, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    })

  beforeAll(async () => {
    root = await tempDir('proj-server-admin-')
    await mkdir(join(root.path, 'applications', 'app'), { recursive: true })
    await writeFile(join(root.path, 'applications', 'app', 'schema.graphql'), SCHEMA)
    await writeFile(
      join(root.path, 'config.yaml'),
      ['roles:', '  reader:', '    tables: { Dog: { read: true } }', ''].join('\n'),
    )
    for (const args of [
      ['rita', '--role', 'reader'],
      ['ops', '--role', 'admin'], // the admin role without the super-user flag: still an administrator
    ]) {
      await addUser(root.path, args[0]!, `${args[0]}-pw`, ...args.slice(1))
    }
    server = await startServerProcess(root.path, {
      env: { ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password },
    })
    http = server.listeners.http!.url
    mqttUrl = server.listeners.mqtt!.url
    const put = await send('PUT', '/Dog/1', admin, { id: '1', name: 'Rex', breed: 'beagle' })
    expect(put.status).toBe(201)
  })

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
    const code = await server?.stop()
    await root?.remove()
    expect(code, server?.output()).toBe(0)
  })

  it('needs credentials on every path, and answers who is asking', async () => {
    for (const path of ['/_admin/me', '/_admin/tables', '/_admin/clients', '/_admin/nothing-here']) {
      const res = await get(path)
      expect(res.status, path).toBe(401)
      expect(await res.json()).toMatchObject({ error: 'UNAUTHORIZED' })
    }
    expect(await (await get('/_admin/me', rita)).json()).toEqual({
      username: 'rita',
      role: 'reader',
      admin: false,
    })
    expect(await (await get('/_admin/me', ops)).json()).toEqual({
      username: 'ops',
      role: 'admin',
      admin: true,
    })
    // a Bearer token from /login works like Basic
    const login = await fetch(`${http}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(ADMIN),
    })
    const { token } = (await login.json()) as { token: string }
    const me = await get('/_admin/me', `Bearer ${token}`)
    expect(await me.json()).toMatchObject({ username: 'admin', admin: true })
    const byQuery = await get(`/_admin/me?access_token=${encodeURIComponent(token)}`)
    expect(byQuery.status).toBe(200)
    expect((await get('/_admin/nothing-here', admin)).status).toBe(404)
    expect((await send('POST', '/_admin/tables', admin, {})).status).toBe(405)
  })

  it('lists tables with export path, record count, schema and indexes; a role sees what it may read', async () => {
    const all = (await (await get('/_admin/tables', admin)).json()) as Record<string, unknown>[]
    expect(all.map((t) => t.name)).toEqual(['Dog', 'Secret', 'Internal'])
    expect(all[0]).toEqual({
      name: 'Dog',
      exportPath: 'Dog',
      records: 1,
      primaryKey: 'id',
      sealed: false,
      expiration: null,
      attributes: [
        { name: 'id', type: 'ID', required: false, indexed: false, primaryKey: true },
        { name: 'name', type: 'String', required: true, indexed: false, primaryKey: false },
        { name: 'breed', type: 'String', required: false, indexed: true, primaryKey: false },
        { name: 'tags', type: '[String]', required: false, indexed: false, primaryKey: false },
      ],
      indexes: ['breed'],
    })
    expect(all[2]).toMatchObject({ name: 'Internal', exportPath: null })
    const mine = (await (await get('/_admin/tables', rita)).json()) as Record<string, unknown>[]
    expect(mine.map((t) => t.name)).toEqual(['Dog'])
  })

  it('lists connected clients and sessions, and lets administrators disconnect one', async () => {
    const c = await connectMqtt(mqttUrl, {
      username: 'rita',
      password: 'rita-pw',
      clientId: 'studio-c1',
      protocolVersion: 5,
      properties: { sessionExpiryInterval: 600 },
    })
    clients.push(c)
    await c.subscribeAsync('Dog/#', { qos: 1 })

    const listed = (await (await get('/_admin/clients', admin)).json()) as Record<string, unknown>[]
    const mine = listed.find((x) => x.clientId === 'studio-c1')
    expect(mine).toMatchObject({
      username: 'rita',
      protocolVersion: 5,
      transport: 'tcp',
      remoteAddress: expect.stringContaining('127.0.0.1'),
      durable: true,
      inflight: 0,
      queued: 0,
      subscriptions: [{ filter: 'Dog/#', qos: 1, shared: false }],
    })

    // a non-administrator learns nothing: the same 403 whether or not the client exists
    for (const path of ['/_admin/clients', '/_admin/sessions', '/_admin/users', '/_admin/roles']) {
      const res = await get(path, rita)
      expect(res.status, path).toBe(403)
      expect(await res.text()).not.toContain('studio-c1')
    }
    const refused = await send('DELETE', '/_admin/clients/studio-c1', rita)
    const refusedMissing = await send('DELETE', '/_admin/clients/nobody', rita)
    expect([refused.status, refusedMissing.status]).toEqual([403, 403])
    expect(await refused.json()).toEqual(await refusedMissing.json())
    expect(c.connected).toBe(true)

    const gone = new Promise<number | undefined>((resolve) =>
      c.once('disconnect', (p) => resolve(p.reasonCode)),
    )
    expect((await send('DELETE', '/_admin/clients/studio-c1', admin)).status).toBe(204)
    expect(await gone).toBe(0x98)
    expect((await send('DELETE', '/_admin/clients/studio-c1', admin)).status).toBe(404)

    // the durable session stays, now without a connection
    const sessions = (await (await get('/_admin/sessions', ops)).json()) as Record<string, unknown>[]
    expect(sessions.find((s) => s.clientId === 'studio-c1')).toMatchObject({
      connected: false,
      durable: true,
    })
  })

  it('lists users without secrets, adds users and changes passwords (administrators only)', async () => {
    const listed = await (await get('/_admin/users', admin)).text()
    expect(JSON.parse(listed)).toEqual(
      expect.arrayContaining([{ username: 'rita', role: 'reader', superUser: false }]),
    )
    expect(listed).not.toMatch(/scrypt|password|scram|storedKey/i)

    const created = await send('POST', '/_admin/users', admin, {
      username: 'newbie',
      password: 'n1',
      role: 'reader',
    })
    expect(created.status).toBe(201)
    expect(await created.json()).toEqual({ username: 'newbie', role: 'reader', superUser: false })
    expect((await get('/_admin/me', basic('newbie', 'n1'))).status).toBe(200)
    expect((await send('POST', '/_admin/users', admin, { username: 'newbie', password: 'x' })).status).toBe(
      409,
    )
    expect(
      (await send('POST', '/_admin/users', admin, { username: 'x', password: 'x', role: 'nope' })).status,
    ).toBe(400)
    expect((await send('POST', '/_admin/users', admin, { username: 'x' })).status).toBe(400)
    expect((await send('POST', '/_admin/users', rita, { username: 'y', password: 'y' })).status).toBe(403)

    expect((await send('PUT', '/_admin/users/newbie/password', admin, { password: 'n2' })).status).toBe(204)
    expect((await get('/_admin/me', basic('newbie', 'n1'))).status).toBe(401)
    expect((await get('/_admin/me', basic('newbie', 'n2'))).status).toBe(200)
    expect((await send('PUT', '/_admin/users/ghost/password', admin, { password: 'z' })).status).toBe(404)
    expect((await send('PUT', '/_admin/users/rita/password', rita, { password: 'z' })).status).toBe(403)
    expect((await get('/_admin/me', rita)).status).toBe(200)
  })

  it('lists roles with their table permissions and topic rules', async () => {
    const roles = (await (await get('/_admin/roles', admin)).json()) as Record<string, unknown>[]
    expect(roles.map((r) => r.name)).toEqual(['admin', 'user', 'anonymous', 'reader'])
    expect(roles.find((r) => r.name === 'reader')).toEqual({
      name: 'reader',
      superUser: false,
      tables: { Dog: { read: true } },
      topics: [],
    })
  })
})

describe('reserved paths', () => {
  it('refuses to start when a table is exported under a path the server answers itself', async () => {
    const root = await tempDir('proj-server-reserved-')
    try {
      await mkdir(join(root.path, 'applications', 'app'), { recursive: true })
      await writeFile(
        join(root.path, 'applications', 'app', 'schema.graphql'),
        'type Metric @table @export(name: "metrics") { id: ID @primaryKey }\ntype Admin @table @export(name: "_Admin") { id: ID @primaryKey }\n',
      )
      const started = await runCli(['start', '--root', root.path, '--http-port', '0', '--mqtt-port', '0'], {
        env: { PROJ_LOGGING_LEVEL: 'silent' },
      })
      expect(started.code).toBe(2)
      expect(started.stderr).toContain("exported at 'metrics' collides with the server's /metrics route")
      expect(started.stderr).toContain("exported at '_Admin' collides with the server's /_admin route")
    } finally {
      await root.remove()
    }
  })
})
