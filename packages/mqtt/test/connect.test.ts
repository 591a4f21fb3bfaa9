import { describe, expect, it, vi } from 'vitest'
import { pairClient, useBrokerFixture } from './helpers.js'

const fx = useBrokerFixture()
const { make } = fx

describe('CONNECT', () => {
  it('closes without CONNACK when the first packet is not CONNECT [MQTT-3.1.0-1]', async () => {
    const c = pairClient(make())
    c.send({ cmd: 'pingreq' })
    await c.waitClosed()
    expect(c.packets).toEqual([])
  })

  it('answers an unknown protocol level with return code 1 [MQTT-3.1.2-2]', async () => {
    const c = pairClient(make())
    // CONNECT, protocol "MQTT" level 6
    c.send(Buffer.from([0x10, 12, 0, 4, 0x4d, 0x51, 0x54, 0x54, 6, 2, 0, 0, 0, 0]))
    const connack = await c.next('connack')
    expect(connack.returnCode).toBe(1)
    await c.waitClosed()
  })

  it('accepts MQTT 3.1 (MQIsdp), 3.1.1 and 5', async () => {
    for (const v of [3, 4, 5] as const) {
      const c = pairClient(make(), v)
      const ack = await c.connect({ clientId: `v${v}` })
      expect(v === 5 ? ack.reasonCode : ack.returnCode).toBe(0)
      c.end()
      await fx.broker.close()
    }
  })

  it('refuses an empty client id with clean session 0 on 3.1.1 (return code 2) [MQTT-3.1.3-8]', async () => {
    const c = pairClient(make())
    // mqtt-packet refuses to write this packet, so the bytes are spelled out: clean session 0, empty id.
    c.send(Buffer.from([0x10, 12, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0, 0, 0, 0, 0]))
    expect((await c.next('connack')).returnCode).toBe(2)
    await c.waitClosed()
  })

  it('assigns a client id for an empty one: 3.1.1 clean session, v5 Assigned Client Identifier', async () => {
    const c4 = pairClient(make())
    expect((await c4.connect({ clientId: '', clean: true })).returnCode).toBe(0)
    const c5 = pairClient(fx.broker, 5)
    const ack = await c5.connect({ clientId: '' })
    expect(ack.reasonCode).toBe(0)
    expect(ack.properties?.assignedClientIdentifier).toMatch(/^auto-/)
  })

  it('sends v5 Server Keep Alive when the client asks for more than the maximum', async () => {
    const c = pairClient(make({ maxKeepAlive: 30 }), 5)
    const ack = await c.connect({ keepalive: 120 })
    expect(ack.properties?.serverKeepAlive).toBe(30)
  })

  it('refuses a 3.1.1 keep alive above the maximum with return code 2, as Mosquitto does', async () => {
    const c = pairClient(make({ maxKeepAlive: 30 }))
    expect((await c.connect({ keepalive: 120 })).returnCode).toBe(2)
  })

  it('closes a second CONNECT [MQTT-3.1.0-2]', async () => {
    const c = pairClient(make())
    await c.connect()
    c.send({
      cmd: 'connect',
      clientId: 'again',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      keepalive: 0,
    })
    await c.waitClosed()
    // Closed without answering: no second CONNACK (nor anything else) after the first.
    expect(c.packets).toEqual([])
  })

  it('closes a connection that sends no CONNECT in time', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    const c = pairClient(make({ connectTimeoutMs: 5000 }))
    await vi.advanceTimersByTimeAsync(4990)
    expect(c.closed).toBe(false) // not before its time
    await vi.advanceTimersByTimeAsync(11)
    vi.useRealTimers()
    await c.waitClosed()
    expect(c.packets).toEqual([]) // no CONNACK: the client never asked
  })

  it('takes a session over: v5 DISCONNECT 0x8E to the old connection [MQTT-3.1.4-3]', async () => {
    make()
    const old = pairClient(fx.broker, 5)
    await old.connect({ clientId: 'same' })
    const fresh = pairClient(fx.broker, 5)
    await fresh.connect({ clientId: 'same' })
    const d = await old.next('disconnect')
    expect(d.reasonCode).toBe(0x8e)
    await old.waitClosed()
    expect(fresh.closed).toBe(false)
  })

  it('emits connection, connected and disconnected', async () => {
    make()
    const seen: string[] = []
    fx.broker.events.on('connection', () => seen.push('connection'))
    fx.broker.events.on('connected', (s) => seen.push(`connected:${s.clientId}`))
    fx.broker.events.on('disconnected', (s, _stream, d) =>
      seen.push(`disconnected:${s.clientId}:${d.reason}`),
    )
    const c = pairClient(fx.broker)
    await c.connect({ clientId: 'ev' })
    c.send({ cmd: 'disconnect' })
    await c.waitClosed()
    expect(seen).toEqual(['connection', 'connected:ev', 'disconnected:ev:client disconnected'])
  })
})

describe('keep alive', () => {
  it('closes after 1.5 x keep alive without packets and publishes the will [MQTT-3.1.2-24]', async () => {
    make()
    const watcher = pairClient(fx.broker)
    await watcher.connect({ clientId: 'watcher' })
    watcher.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'wills/#', qos: 0 }] })
    await watcher.next('suback')
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    const c = pairClient(fx.broker, 5)
    await c.connect({
      clientId: 'sleepy',
      keepalive: 10,
      will: { topic: 'wills/sleepy', payload: Buffer.from('gone'), qos: 0, retain: false },
    })
    await vi.advanceTimersByTimeAsync(14_000)
    expect(c.closed).toBe(false)
    await vi.advanceTimersByTimeAsync(1_100)
    vi.useRealTimers()
    const d = await c.next('disconnect')
    expect(d.reasonCode).toBe(0x8d)
    await c.waitClosed()
    const will = await watcher.next('publish')
    expect(will.topic).toBe('wills/sleepy')
    expect(will.payload.toString()).toBe('gone')
  })

  it('watches every connection with one shared timer and still closes each one in time', async () => {
    make()
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    const clients = Array.from({ length: 40 }, () => pairClient(fx.broker))
    for (const [i, c] of clients.entries()) await c.connect({ clientId: `idle-${i}`, keepalive: 10 })
    // One timer per connection before: 40 and more.
    expect(vi.getTimerCount()).toBeLessThan(5)
    await vi.advanceTimersByTimeAsync(14_000)
    expect(clients.filter((c) => c.closed)).toHaveLength(0)
    await vi.advanceTimersByTimeAsync(1_100)
    vi.useRealTimers()
    for (const c of clients) await c.waitClosed()
  })

  it('stays open while PINGREQs arrive', async () => {
    make()
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    const c = pairClient(fx.broker)
    await c.connect({ keepalive: 10 })
    for (let i = 0; i < 5; i++) {
      await vi.advanceTimersByTimeAsync(9_000)
      c.send({ cmd: 'pingreq' })
      await c.next('pingresp')
    }
    expect(c.closed).toBe(false)
  })
})
