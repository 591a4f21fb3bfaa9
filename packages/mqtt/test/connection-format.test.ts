import { decode } from '@proj/codec'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { duplexPair, openTestRuntime, RawClient, type TestRuntime, useBrokerFixture } from './helpers.js'

const fx = useBrokerFixture()
let rt: TestRuntime

beforeAll(async () => {
  rt = await openTestRuntime({
    schemas: [{ source: 'type Dog @table @export { id: ID @primaryKey name: String }' }],
  })
  await rt.runtime.put('Dog/1', { name: 'Rex' }, { user: null })
})
afterAll(async () => {
  await rt.close()
})

/** A client whose transport told the broker an Accept value (MQTT over WebSocket: the upgrade request's). */
function clientWithAccept(accept: string | undefined, version: 4 | 5 = 4): RawClient {
  const [client, server] = duplexPair()
  fx.broker.handle(server, { transport: 'ws', ...(accept !== undefined ? { accept } : {}) })
  return new RawClient(client, version)
}

async function firstRecord(c: RawClient): Promise<{ payload: Buffer; contentType: string | undefined }> {
  await c.connect()
  c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'Dog/1', qos: 0 }] })
  const p = await c.next('publish')
  return { payload: p.payload as Buffer, contentType: p.properties?.contentType }
}

describe("the transport's Accept value", () => {
  it('makes CBOR the default format of the connection', async () => {
    fx.make({}, rt)
    const { payload } = await firstRecord(clientWithAccept('application/cbor'))
    expect(decode(payload, 'application/cbor')).toMatchObject({ name: 'Rex' })
  })

  it('makes MessagePack the default format, and tells a v5 client the content type', async () => {
    fx.make({}, rt)
    const { payload, contentType } = await firstRecord(
      clientWithAccept('application/json;q=0.5, application/msgpack', 5),
    )
    expect(decode(payload, 'application/msgpack')).toMatchObject({ name: 'Rex' })
    expect(contentType).toBe('application/msgpack')
  })

  it('leaves JSON for */*, for types it cannot encode, and when absent', async () => {
    fx.make({}, rt)
    for (const accept of ['*/*', 'text/html', undefined]) {
      const { payload } = await firstRecord(clientWithAccept(accept))
      expect(JSON.parse(payload.toString()), String(accept)).toMatchObject({ name: 'Rex' })
    }
  })
})
