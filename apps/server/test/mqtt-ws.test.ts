import { createBroker } from '@proj/mqtt'
import { once, waitFor } from '@proj/test-utils'
import mqtt from 'mqtt'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { openTestRuntime, startServer, type TestRuntime, type TestServer } from './helpers/in-process.js'

let rt: TestRuntime
let srv: TestServer
let broker: ReturnType<typeof createBroker>
const clients: mqtt.MqttClient[] = []
const sockets: WebSocket[] = []

beforeEach(async () => {
  rt = await openTestRuntime()
  broker = createBroker({ runtime: rt.runtime })
  srv = await startServer({
    runtime: rt.runtime,
    subprotocols: {
      mqtt: (stream, req) =>
        broker.handle(stream, { transport: 'ws', remoteAddress: req.socket.remoteAddress }),
    },
  })
})

afterEach(async () => {
  for (const c of clients.splice(0)) await c.endAsync(true)
  for (const ws of sockets.splice(0)) ws.terminate()
  await srv.close()
  await broker.close()
  await rt.close()
})

const basic = `Basic ${Buffer.from('ann:secret').toString('base64')}`

async function connect(protocolVersion: 4 | 5 = 5) {
  const client = await mqtt.connectAsync(`${srv.wsUrl}/mqtt`, {
    username: 'ann',
    password: 'secret',
    protocolVersion,
    reconnectPeriod: 0,
    connectTimeout: 5000,
  })
  clients.push(client)
  return client
}

describe('MQTT over WebSocket (sub-protocol mqtt) on the HTTP port', () => {
  it('serves MQTT.js: a retained publish is a record that REST, WebSocket and MQTT subscribers all see', async () => {
    const watcher = new WebSocket(`${srv.wsUrl}/Dog/`, { headers: { authorization: basic } })
    sockets.push(watcher)
    const envelopes: any[] = []
    watcher.on('message', (data: Buffer) => envelopes.push(JSON.parse(data.toString('utf8'))))
    await once(watcher, 'open')

    const subscriber = await connect(4)
    const received: { topic: string; payload: string; retain: boolean }[] = []
    subscriber.on('message', (topic, payload, packet) =>
      received.push({ topic, payload: payload.toString(), retain: packet.retain }),
    )
    await subscriber.subscribeAsync('Dog/#', { qos: 1 })

    const publisher = await connect(5)
    await publisher.publishAsync('Dog/ws1', JSON.stringify({ id: 'ws1', name: 'Over WS' }), {
      qos: 1,
      retain: true,
    })

    const rest = await fetch(`${srv.url}/Dog/ws1`, { headers: { authorization: basic } })
    expect(rest.status).toBe(200)
    expect(await rest.json()).toEqual({ id: 'ws1', name: 'Over WS' })
    await waitFor(() => received.some((m) => m.topic === 'Dog/ws1'), { message: 'MQTT delivery' })
    expect(JSON.parse(received.find((m) => m.topic === 'Dog/ws1')!.payload)).toEqual({
      id: 'ws1',
      name: 'Over WS',
    })
    await waitFor(() => envelopes.some((e) => e.id === 'ws1'), { message: 'WebSocket envelope' })
    expect(envelopes.find((e) => e.id === 'ws1')).toMatchObject({
      type: 'put',
      value: { id: 'ws1', name: 'Over WS' },
    })

    // And the other way: a REST write reaches the MQTT subscriber.
    await fetch(`${srv.url}/Dog/ws2`, {
      method: 'PUT',
      headers: { authorization: basic, 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'ws2', name: 'From REST' }),
    })
    await waitFor(() => received.some((m) => m.topic === 'Dog/ws2'), { message: 'REST write over MQTT' })
  })

  it('selects the mqtt (or mqttv3.1) sub-protocol and leaves other protocols to record sockets', async () => {
    for (const protocol of ['mqtt', 'mqttv3.1']) {
      const ws = new WebSocket(`${srv.wsUrl}/anything`, [protocol])
      sockets.push(ws)
      await once(ws, 'open')
      expect(ws.protocol).toBe(protocol)
    }
    // A protocol nobody registered is not selected; the path is then a record socket as usual.
    const plain = new WebSocket(`${srv.wsUrl}/Dog/p`, ['chat'], { headers: { authorization: basic } })
    sockets.push(plain)
    plain.on('error', () => {})
    const outcome = await new Promise<string>((resolve) => {
      plain.on('open', () => resolve(`open:${plain.protocol}`))
      plain.on('error', (err) => resolve(`error:${err.message}`))
    })
    // RFC 6455 §4.1: a client that offered protocols fails the connection when the server picks none.
    expect(outcome).toMatch(/^error:.*[Ss]ub-?protocol|^open:$/)
  })
})
