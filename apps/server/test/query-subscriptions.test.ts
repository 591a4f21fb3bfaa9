import { tempDir, waitFor } from '@proj/test-utils'
import { EventSource } from 'eventsource'
import mqtt, { type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient } from 'mqtt'
import { afterAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { basic } from './helpers/clients.js'
import { type ServerProcess, startServerProcess } from './helpers/server-process.js'

const ADMIN = { username: 'admin', password: 'admin-secret' }
const QUERY = 'Dog/?breed=Lab&age=gt=3'
// The change log keeps 40 events, compacted every 100 ms: the last step outlives it on purpose. No
// `$SYS` topics (their retained refreshes are logged too, and would push the rest out).
const MAX_EVENTS = 40
const ARGS = [
  '--change-log-max-events',
  String(MAX_EVENTS),
  '--change-log-compaction-interval',
  '100',
  '--set',
  'sys.interval=0',
]

type Got = { door: string; type: string; id: string; value?: unknown }

/** What an MQTT client receives, as envelopes: an empty payload is `leave`/`delete`/`reset` (3.1.1: `gone`). */
function follow(client: MqttClient, door: string, into: Got[]) {
  client.on('message', (topic, payload, packet: IPublishPacket) => {
    const id = topic.startsWith('Dog/?') ? '' : topic.slice('Dog/'.length)
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

/**
 * Connects with the message listener already attached: a resumed session's replay may arrive right
 * behind CONNACK, before an `await` on the connection would return.
 */
async function connectFollowing(
  url: string,
  options: IClientOptions,
  door: string,
  into: Got[],
  sessionPresent = false,
): Promise<MqttClient> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options })
  follow(client, door, into)
  const connack = await new Promise<IConnackPacket>((resolve, reject) => {
    client.once('connect', (packet) => {
      client.off('error', reject)
      resolve(packet)
    })
    client.once('error', reject)
  })
  // a resumed session must still be there, or the replay checked below would prove nothing
  expect(connack.sessionPresent, `${door} session present`).toBe(sessionPresent)
  return client
}

function openSse(url: string, auth: string, door: string, into: Got[], lastEventId?: string) {
  const es = new EventSource(url, {
    fetch: (input, init) =>
      fetch(input, {
        ...init,
        headers: {
          ...init?.headers,
          authorization: auth,
          ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }),
        },
      }),
  })
  const state = { es, lastEventId }
  for (const type of ['put', 'patch', 'delete', 'message', 'leave', 'reset'])
    es.addEventListener(type, (e) => {
      const { id, value } = JSON.parse(e.data) as { id?: string; value?: unknown }
      if (e.lastEventId) state.lastEventId = e.lastEventId
      into.push({ door, type, id: id ?? '', ...(value === undefined ? {} : { value }) })
    })
  return state
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
  /** How many events the change log holds now (the metric of the same name). */
  const logEvents = async () => {
    const text = await (
      await fetch(`${server.listeners.http!.url}/metrics`, { headers: { authorization: auth } })
    ).text()
    return Number(/^proj_changelog_events (\d+)$/m.exec(text)?.[1])
  }

  it('MQTT 3.1.1 and 5, ws and EventSource: enter, update, message, leave, delete; resume after a restart; reset past retention', async () => {
    root = await tempDir('proj-server-query-')
    server = await startServerProcess(root.path, { env, args: ARGS })
    await rest('PUT', '/Dog/1', { name: 'Rex', breed: 'Lab', age: 5 })
    const got: Got[] = []
    /** Waits for `n` envelopes in all (and says what came when they do not). */
    const until = (n: number) =>
      waitFor(() => got.length >= n, { timeoutMs: 10_000 }).catch((error: Error) => {
        throw new Error(`${error.message}; ${got.length} of ${n}: ${JSON.stringify(got)}`)
      })
    const mqttUrl = () => server.listeners.mqtt!.url
    const httpUrl = () => server.listeners.http!.url
    const v5Options = {
      ...ADMIN,
      protocolVersion: 5 as const,
      clientId: 'q-e2e-5',
      clean: false,
      properties: { sessionExpiryInterval: 3600 },
    }
    const v4Options = { ...ADMIN, protocolVersion: 4 as const, clientId: 'q-e2e-4', clean: false }
    let v5 = await connectFollowing(mqttUrl(), v5Options, 'v5', got)
    let v4 = await connectFollowing(mqttUrl(), v4Options, 'v4', got)
    closers.push(
      () => v5.endAsync(true),
      () => v4.endAsync(true),
    )
    await v5.subscribeAsync(QUERY, { qos: 1 })
    await v4.subscribeAsync(QUERY, { qos: 1 })

    const openWs = () => {
      const ws = new WebSocket(`${httpUrl().replace('http', 'ws')}/${QUERY}`, {
        headers: { authorization: auth },
      })
      closers.push(() => ws.close())
      ws.on('message', (data) => {
        const { type, id, value } = JSON.parse(String(data))
        got.push({ door: 'ws', type, id, ...(value === undefined ? {} : { value }) })
      })
      return ws
    }
    let ws = openWs()
    let sse = openSse(`${httpUrl()}/${QUERY}`, auth, 'sse', got)
    closers.push(() => sse.es.close())
    await until(4)
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
    await until(20)
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

    // Away: every client disconnects; records enter and leave before, and after, a server restart.
    await v5.endAsync()
    await v4.endAsync()
    sse.es.close()
    ws.close()
    await rest('PUT', '/Dog/3', { name: 'Max', breed: 'Lab', age: 9 }) // enters
    await rest('PATCH', '/Dog/2', { breed: 'Lab' }) // comes back
    await rest('PUT', '/Dog/5', { name: 'Brief', breed: 'Lab', age: 7 }) // enters and is gone again
    await rest('DELETE', '/Dog/5')
    expect(await server.stop()).toBe(0)
    server = await startServerProcess(root.path, { env, args: ARGS })
    await rest('PATCH', '/Dog/3', { age: 1 }) // and leaves, after the restart
    await rest('PUT', '/Dog/6', { name: 'Out', breed: 'Pug', age: 8 }) // never in
    v5 = await connectFollowing(mqttUrl(), v5Options, 'v5', got, true)
    v4 = await connectFollowing(mqttUrl(), v4Options, 'v4', got, true)
    sse = openSse(`${httpUrl()}/${QUERY}`, auth, 'sse', got, sse.lastEventId)
    ws = openWs() // no resume on a WebSocket: the current result
    await until(3 * 5 + 1)
    const max = { id: '3', name: 'Max', breed: 'Lab', age: 9 }
    const fidoBack = { ...fido, breed: 'Lab' }
    const brief = { id: '5', name: 'Brief', breed: 'Lab', age: 7 }
    // what happened while away, each change with its transition (a put for every enter)
    expect(only('v5')).toEqual([
      { type: 'live', id: '3', value: max },
      { type: 'live', id: '2', value: fidoBack },
      { type: 'live', id: '5', value: brief },
      { type: 'delete', id: '5' },
      { type: 'leave', id: '3' },
    ])
    expect(only('v4').map((g) => [g.type, g.id])).toEqual([
      ['live', '3'],
      ['live', '2'],
      ['live', '5'],
      ['gone', '5'],
      ['gone', '3'],
    ])
    expect(only('sse')).toEqual([
      { type: 'put', id: '3', value: max },
      { type: 'put', id: '2', value: fidoBack },
      { type: 'put', id: '5', value: brief },
      { type: 'delete', id: '5' },
      { type: 'leave', id: '3' },
    ])
    expect(only('ws')).toEqual([{ type: 'put', id: '2', value: fidoBack }])
    // and live again after the resume
    got.length = 0
    await rest('PATCH', '/Dog/2', { age: 5 })
    await until(4)
    expect(got.map((g) => [g.door, g.type, g.id]).sort()).toEqual([
      ['sse', 'patch', '2'],
      ['v4', 'live', '2'],
      ['v5', 'live', '2'],
      ['ws', 'patch', '2'],
    ])
    got.length = 0

    // Past retention: away again while more than MAX_EVENTS changes are logged and compacted.
    await v5.endAsync()
    await v4.endAsync()
    sse.es.close()
    ws.close()
    await rest('PUT', '/Dog/4', { name: 'New', breed: 'Lab', age: 10 }) // enters, but the log forgets it
    for (let i = 0; i < MAX_EVENTS; i++)
      await rest('PUT', `/Dog/x${i}`, { name: 'Out', breed: 'Pug', age: 1 })
    await waitFor(async () => (await logEvents()) <= MAX_EVENTS, { timeoutMs: 10_000 })
    v5 = await connectFollowing(mqttUrl(), v5Options, 'v5', got, true)
    v4 = await connectFollowing(mqttUrl(), v4Options, 'v4', got, true)
    sse = openSse(`${httpUrl()}/${QUERY}`, auth, 'sse', got, sse.lastEventId)
    await until(3 + 2 + 3)
    const fido5 = { ...fidoBack, age: 5 }
    const fresh = { id: '4', name: 'New', breed: 'Lab', age: 10 }
    const byId = (a: { id: string }, b: { id: string }) => a.id.localeCompare(b.id)
    // MQTT 5: an empty message with user property event=reset (on the filter's topic), then the snapshot
    const v5Got = only('v5')
    expect(v5Got[0]).toEqual({ type: 'reset', id: '' })
    expect(v5Got.slice(1).sort(byId)).toEqual([
      { type: 'retained', id: '2', value: fido5 },
      { type: 'retained', id: '4', value: fresh },
    ])
    // MQTT 3.1.1 has no user properties: the same empty message on the filter's topic, then the snapshot
    const v4Got = only('v4')
    expect(v4Got[0]).toEqual({ type: 'gone', id: '' })
    expect(v4Got.slice(1).sort(byId)).toEqual([
      { type: 'retained', id: '2', value: fido5 },
      { type: 'retained', id: '4', value: fresh },
    ])
    const sseGot = only('sse')
    expect(sseGot[0]).toEqual({ type: 'reset', id: '' })
    expect(sseGot.slice(1).sort(byId)).toEqual([
      { type: 'put', id: '2', value: fido5 },
      { type: 'put', id: '4', value: fresh },
    ])
  }, 90_000)
})
