import mqtt from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { startBroker, type TestBroker } from './helpers.js'

let tb: TestBroker | undefined
const clients: mqtt.MqttClient[] = []

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)))
  await tb?.close()
  tb = undefined
})

async function connect(options: mqtt.IClientOptions) {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${tb!.port}`, { reconnectPeriod: 0, ...options }, false)
  clients.push(c)
  return c
}

/** Resolves with the reason code of the server's DISCONNECT (undefined: closed without one). */
function closedBy(client: mqtt.MqttClient): Promise<number | undefined> {
  return new Promise((resolve) => {
    let code: number | undefined
    client.on('disconnect', (packet) => {
      code = packet.reasonCode ?? 0
    })
    client.once('close', () => resolve(code))
  })
}

/** The CONNACK's refusal code of a CONNECT (undefined when it was accepted). */
function refusal(options: mqtt.IClientOptions): Promise<number | undefined> {
  return connect(options).then(
    () => undefined,
    (error: { code?: number }) => error.code,
  )
}

describe('a broker that cannot serve (broker.unavailable)', () => {
  it('closes every connection (v5 DISCONNECT 0x9C Use another server, 3.1.1 closed), refuses CONNECTs (0x88 / 3) until it serves again', async () => {
    tb = await startBroker()
    const v5 = await connect({ clientId: 'five', protocolVersion: 5 })
    const v4 = await connect({ clientId: 'four', protocolVersion: 4 })
    const v5Closed = closedBy(v5)
    const v4Closed = closedBy(v4)
    tb.broker.unavailable('the data here is stale')
    expect(await v5Closed).toBe(0x9c)
    expect(await v4Closed).toBeUndefined()
    expect(await refusal({ clientId: 'late-five', protocolVersion: 5 })).toBe(0x88)
    expect(await refusal({ clientId: 'late-four', protocolVersion: 4 })).toBe(3)

    tb.broker.unavailable(undefined)
    expect(await refusal({ clientId: 'back', protocolVersion: 5 })).toBeUndefined()
  })
})
