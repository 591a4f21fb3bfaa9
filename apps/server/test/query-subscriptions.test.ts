import { tempDir, waitFor } from '@proj/test-utils'
import { EventSource } from 'eventsource'
import type { IPublishPacket, MqttClient } from 'mqtt'
import { afterAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { basic, connectMqtt } from './helpers/clients.js'
import { type ServerProcess, startServerProcess } from './helpers/server-process.js'

const ADMIN = { username: 'admin', password: 'admin-secret' }
const QUERY = 'Dog/?breed=Lab&age=gt=3'

type Got = { door: string; type: string; id: string; value?: unknown }

/** What an MQTT client receives, as envelopes: an empty payload is `leave`/`delete` (3.1.1: `gone`). */
function follow(client: MqttClient, door: string, into: Got[]) {
  client.on('message', (topic, payload, packet: IPublishPacket) => {
    const id = topic.slice('Dog/'.length)
    const event = packet.properties?.userProperties?.event
    if (payload.length === 0) into.push({ door, type: typeof event === 'string' ? event : 'gone', id })
    else
      into.push({
        door,
        type: packet.retain ? 'retained' : 'live',
        id,
        value: JSON.parse(payload.toString()),
      })
  })
}

describe('query subscriptions through the built server, on every door', () => {
  let root: Awaited<ReturnType<typeof tempDir>>
  let server: ServerProcess
  const closers: (() => unknown)[] = []
  const auth = basic(ADMIN.username, ADMIN.password)
  const env = { ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password }

  afterAll(async () => {
    for (const close of closers.splice(0)) await close()
    await server?.stop()
    await root?.remove()
  })

  const rest = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.listeners.http!.url}${path}`, {
      method,
      headers: { authorization: auth, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    expect(res.status, `${method} ${path}`).toBeLessThan(300)
  }

  it('MQTT 3.1.1 and 5, ws and EventSource see enter, update, message, leave and delete; durable sessions resume after a restart', async () => {
    root = await tempDir('proj-server-query-')
    server = await startServerProcess(root.path, { env })
    await rest('PUT', '/Dog/1', { name: 'Rex', breed: 'Lab', age: 5 })
    const got: Got[] = []
    const mqttUrl = () => server.listeners.mqtt!.url
    const v5Options = {
      ...ADMIN,
      protocolVersion: 5 as const,
      clientId: 'q-e2e-5',
      clean: false,
      properties: { sessionExpiryInterval: 3600 },
    }
    const v4Options = { ...ADMIN, protocolVersion: 4 as const, clientId: 'q-e2e-4', clean: false }
    let v5 = await connectMqtt(mqttUrl(), v5Options)
    let v4 = await connectMqtt(mqttUrl(), v4Options)
    closers.push(
      () => v5.endAsync(true),
      () => v4.endAsync(true),
    )
    follow(v5, 'v5', got)
    follow(v4, 'v4', got)
    await v5.subscribeAsync(QUERY, { qos: 1 })
    await v4.subscribeAsync(QUERY, { qos: 1 })

    const ws = new WebSocket(`${server.listeners.http!.url.replace('http', 'ws')}/${QUERY}`, {
      headers: { authorization: auth },
    })
    closers.push(() => ws.close())
    ws.on('message', (data) => {
      const { type, id, value } = JSON.parse(String(data))
      got.push({ door: 'ws', type, id, ...(value === undefined ? {} : { value }) })
    })
    const es = new EventSource(`${server.listeners.http!.url}/${QUERY}`, {
      fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, authorization: auth } }),
    })
    closers.push(() => es.close())
    for (const type of ['put', 'patch', 'delete', 'message', 'leave'])
      es.addEventListener(type, (e) => {
        const { id, value } = JSON.parse(e.data)
        got.push({ door: 'sse', type, id, ...(value === undefined ? {} : { value }) })
      })
    await waitFor(() => got.length === 4, { timeoutMs: 10_000 })
    const rex = { id: '1', name: 'Rex', breed: 'Lab', age: 5 }
    const only = (door: string) => got.filter((g) => g.door === door).map(({ door: _, ...g }) => g)
    expect(only('v5')).toEqual([{ type: 'retained', id: '1', value: rex }])
    expect(only('v4')).toEqual([{ type: 'retained', id: '1', value: rex }])
    expect(only('ws')).toEqual([{ type: 'put', id: '1', value: rex }])
    expect(only('sse')).toEqual([{ type: 'put', id: '1', value: rex }])
    got.length = 0

    await rest('PUT', '/Dog/2', { name: 'Fido', breed: 'Lab', age: 4 }) // enters
    await rest('PATCH', '/Dog/1', { age: 6 }) // update
    await v5.publishAsync('Dog/1', JSON.stringify({ bark: true }), { qos: 1 }) // message
    await rest('PATCH', '/Dog/2', { breed: 'Pug' }) // leaves
    await rest('DELETE', '/Dog/1') // deleted
    await waitFor(() => got.length === 20, { timeoutMs: 10_000 })
    const fido = { id: '2', name: 'Fido', breed: 'Lab', age: 4 }
    const rex6 = { ...rex, age: 6 }
    expect(only('v5')).toEqual([
      { type: 'live', id: '2', value: fido },
      { type: 'live', id: '1', value: rex6 },
      { type: 'live', id: '1', value: { bark: true } },
      { type: 'leave', id: '2' },
      { type: 'delete', id: '1' },
    ])
    expect(only('v4').map((g) => g.type)).toEqual(['live', 'live', 'live', 'gone', 'gone'])
    for (const door of ['ws', 'sse'])
      expect(only(door)).toEqual([
        { type: 'put', id: '2', value: fido },
        { type: 'patch', id: '1', value: rex6 },
        { type: 'message', id: '1', value: { bark: true } },
        { type: 'leave', id: '2' },
        { type: 'delete', id: '1' },
      ])
    got.length = 0

    // away: the MQTT clients disconnect; while the server restarts, records enter and leave
    await v5.endAsync()
    await v4.endAsync()
    es.close()
    ws.close()
    await rest('PUT', '/Dog/3', { name: 'Max', breed: 'Lab', age: 9 }) // enters
    await rest('PATCH', '/Dog/2', { breed: 'Lab' }) // comes back
    expect(await server.stop()).toBe(0)
    server = await startServerProcess(root.path, { env })
    await rest('PATCH', '/Dog/3', { age: 1 }) // and leaves, after the restart
    v5 = await connectMqtt(mqttUrl(), v5Options)
    v4 = await connectMqtt(mqttUrl(), v4Options)
    follow(v5, 'v5', got)
    follow(v4, 'v4', got)
    await waitFor(() => got.length === 6, { timeoutMs: 10_000 })
    const max = { id: '3', name: 'Max', breed: 'Lab', age: 9 }
    const fidoBack = { ...fido, breed: 'Lab' }
    expect(only('v5')).toEqual([
      { type: 'live', id: '3', value: max },
      { type: 'live', id: '2', value: fidoBack },
      { type: 'leave', id: '3' },
    ])
    expect(only('v4').map((g) => [g.type, g.id])).toEqual([
      ['live', '3'],
      ['live', '2'],
      ['gone', '3'],
    ])
  }, 90_000)
})
