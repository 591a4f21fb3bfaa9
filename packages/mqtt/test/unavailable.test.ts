import type mqtt from 'mqtt'
import { describe, expect, it } from 'vitest'
import { useTcpBroker } from './helpers.js'

const fx = useTcpBroker('test')
const connect = (options: mqtt.IClientOptions) => fx.connect(options, false)

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
    const tb = await fx.start()
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
