import { describe, expect, it } from 'vitest'
import { admin, bytes, runtimeFixture } from './helpers.js'

describe('retained delete after a pending retained put', () => {
  it('clears an unclaimed topic when the empty retained publish follows before the put committed', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const put = runtime.publish('plain/a', { payload: bytes('"x"'), retain: true, qos: 1 }, admin)
    const cleared = runtime.publish('plain/a', { payload: new Uint8Array(0), retain: true, qos: 1 }, admin)
    await Promise.all([put, cleared])
    expect(await runtime.get('plain/a', admin)).toBeUndefined()
  })

  it('deletes a record when the empty retained publish follows before the put committed', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const put = runtime.publish('Dog/rex', { payload: bytes('{"name":"Rex"}'), retain: true, qos: 1 }, admin)
    const cleared = runtime.publish('Dog/rex', { payload: new Uint8Array(0), retain: true, qos: 1 }, admin)
    await Promise.all([put, cleared])
    expect(await runtime.get('Dog/rex', admin)).toBeUndefined()
  })
})
