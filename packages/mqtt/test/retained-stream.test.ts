import { describe, expect, it } from 'vitest'
import { useTcpBroker } from './helpers.js'

const fx = useTcpBroker('file')

describe('the retained set a new subscription receives', () => {
  it('is streamed as the client reads it: QoS 0 retained messages beyond the slow-reader limit all arrive', async () => {
    // 320 × 64 KiB = 20 MiB, more than a subscriber may have queued before QoS 0 messages are dropped (8 MiB).
    // Client and broker share this process, so the client reads only between the broker's turns.
    const count = 320
    const payload = Buffer.alloc(64 * 1024, 7)
    const pub = await fx.connect()
    await Promise.all(
      Array.from({ length: count }, (_, i) =>
        pub.publishAsync(`big/${i}`, payload, { qos: 1, retain: true }),
      ),
    )
    const sub = await fx.connect()
    const seen = new Set<string>()
    let bytes = 0
    const all = new Promise<void>((resolve) => {
      sub.on('message', (topic, message, packet) => {
        if (!packet.retain) return
        seen.add(topic)
        bytes += message.length
        if (seen.size === count) resolve()
      })
    })
    await sub.subscribeAsync('big/#', { qos: 0 })
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 20_000).unref())
    const outcome = await Promise.race([all.then(() => 'all' as const), timeout])
    expect({ outcome, received: seen.size, dropped: fx.tb.broker.stats.dropped.slowReader }).toEqual({
      outcome: 'all',
      received: count,
      dropped: 0,
    })
    expect(bytes).toBe(count * payload.length)
  }, 30_000)
})
