import { waitFor } from '@proj/test-utils'
import type { IClientOptions } from 'mqtt'
import { describe, expect, it } from 'vitest'
import { useTcpBroker } from './helpers.js'

const fx = useTcpBroker('test')
const connect = (options: IClientOptions) => fx.connect(options)

describe('broker introspection', () => {
  it('lists connected clients and kept sessions with their subscriptions and counts', async () => {
    const tb = await fx.start()
    const a = await connect({ clientId: 'a', protocolVersion: 5, properties: { sessionExpiryInterval: 300 } })
    await a.subscribeAsync({ 'x/#': { qos: 1 }, '$share/g/y/+': { qos: 0 } })
    const b = await connect({ clientId: 'b', protocolVersion: 4, clean: true })

    const listed = tb.broker.listClients()
    expect(listed.map((c) => c.clientId)).toEqual(['a', 'b'])
    expect(listed[0]).toMatchObject({
      clientId: 'a',
      username: null,
      protocolVersion: 5,
      transport: 'tcp',
      remoteAddress: '127.0.0.1',
      connected: true,
      durable: true,
      expiryInterval: 300,
      inflight: 0,
      queued: 0,
      subscriptions: [
        { filter: 'x/#', qos: 1, shared: false, noLocal: false, retainAsPublished: false },
        { filter: '$share/g/y/+', qos: 0, shared: true, noLocal: false, retainAsPublished: false },
      ],
    })
    expect(listed[0]!.remotePort).toBeGreaterThan(0)
    expect(listed[1]).toMatchObject({ clientId: 'b', protocolVersion: 4, durable: false, subscriptions: [] })

    // the durable session stays when its client goes away; the clean one does not
    await a.endAsync()
    await b.endAsync()
    await waitFor(() => tb.broker.listClients().length === 0)
    const sessions = tb.broker.listSessions()
    expect(sessions).toHaveLength(1)
    expect(sessions[0]).toMatchObject({ clientId: 'a', connected: false, durable: true })
    expect(sessions[0]!.disconnectedAt).toBeGreaterThan(0)

    const gauges = tb.broker.gauges()
    expect(gauges).toMatchObject({ sessions: 1, durableSessions: 1, subscriptions: 2 })
    expect(gauges.connections.tcp).toEqual({ 3: 0, 4: 0, 5: 0 })
  })

  it('disconnectClient closes the connection with DISCONNECT 0x98 (v5) and keeps a durable session', async () => {
    const tb = await fx.start()
    const a = await connect({
      clientId: 'kick-me',
      protocolVersion: 5,
      properties: { sessionExpiryInterval: 60 },
    })
    const disconnected = new Promise<number | undefined>((resolve) =>
      a.once('disconnect', (p) => resolve(p.reasonCode)),
    )
    expect(tb.broker.disconnectClient('nobody')).toBe(false)
    expect(tb.broker.disconnectClient('kick-me')).toBe(true)
    expect(await disconnected).toBe(0x98)
    await waitFor(() => tb.broker.listClients().length === 0)
    expect(tb.broker.listSessions().map((s) => s.clientId)).toEqual(['kick-me'])
    expect(tb.broker.disconnectClient('kick-me')).toBe(false)
  })

  it('counts connects, messages by QoS, auth failures and queue-full drops', async () => {
    const tb = await fx.start({ maxInflight: 1, maxQueued: 1 })
    const stats = tb.broker.stats
    await tb.runtime.users.add('u', 'pw')
    await expect(connect({ username: 'u', password: 'bad' })).rejects.toThrow()
    expect(stats.authFailures).toBe(1)

    // a subscriber that never acknowledges: one in flight, one queued, the rest dropped
    const sub = await connect({ clientId: 'slow', protocolVersion: 5, manualConnect: false })
    sub.handleMessage = (_packet, _done) => {}
    await sub.subscribeAsync('q/#', { qos: 1 })
    const pub = await connect({ clientId: 'pub' })
    for (let i = 0; i < 4; i++) await pub.publishAsync(`q/${i}`, 'x', { qos: 1 })
    await pub.publishAsync('q/zero', 'x', { qos: 0 })

    const tcp = stats.doors.tcp
    // the QoS 0 publish resolved when MQTT.js wrote it: wait for the broker to have handled it
    await waitFor(() => stats.dropped.queueFull >= 3)
    expect(tcp.connects).toBe(2)
    expect(tcp.messagesIn).toEqual([1, 4, 0])
    // QoS 1 message 0 in flight, message 1 queued, 2 and 3 dropped, the QoS 0 one dropped behind the queue
    expect(stats.dropped.queueFull).toBe(3)
    expect(tcp.messagesOut).toEqual([0, 1, 0])
    expect(tb.broker.gauges()).toMatchObject({ inflight: 1, queued: 1, maxQueued: 1 })
  })
})
