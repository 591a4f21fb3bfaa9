/**
 * Randomized SIGKILL loop: QoS 1 and QoS 2 publishes flow to a durable subscriber while the broker is killed
 * at random moments and restarted on the same data. Clients keep their session state as MQTT requires.
 * Every acknowledged message arrives, and no QoS 2 message reaches the application twice.
 *
 * A few cycles run in `pnpm test`; more with `MQTT_SIGKILL_CYCLES=20 pnpm --filter @proj/mqtt test:sigkill`.
 */
import { join } from 'node:path'
import { tempDir } from '@proj/test-utils'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildBroker, type ChildBroker, killChild, startChild } from './child-broker.js'
import { ExactReceiver, ResumingPublisher } from './qos-clients.js'

const CYCLES = Number(process.env.MQTT_SIGKILL_CYCLES ?? 3)
/** Publishes in flight at once (the publisher's window). */
const WINDOW = 32

const running = new Set<ChildBroker>()
beforeAll(buildBroker, 300_000)
afterAll(async () => {
  for (const b of running) await killChild(b)
})

async function start(data: string): Promise<ChildBroker> {
  const b = await startChild(data)
  running.add(b)
  b.exited.then(() => running.delete(b))
  return b
}

/** A small seeded generator (mulberry32), so a failing run can be repeated with MQTT_SIGKILL_SEED. */
function random(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe('SIGKILL loop', () => {
  it(
    `${CYCLES} random kills under QoS 1 and 2 load: 0 lost, 0 QoS 2 duplicates`,
    async () => {
      const seed = Number(process.env.MQTT_SIGKILL_SEED ?? Date.now() % 1_000_000)
      const rand = random(seed)
      await using tmp = await tempDir('mqtt-sigkill-')
      const data = join(tmp.path, 'db')
      let broker = await start(data)
      const port = () => broker.port
      const sub = new ExactReceiver('loop-sub')
      const pub = new ResumingPublisher('loop-pub')
      let stop = false
      let sent = 0
      try {
        await sub.connect(broker.port)
        await sub.subscribe('loop/#', 2)
        await pub.connect(broker.port)

        // The publisher keeps WINDOW messages in flight; while the broker is down they wait and are resent.
        const publishing = (async () => {
          const inFlight = new Set<Promise<void>>()
          while (!stop) {
            const qos = sent % 2 === 0 ? 2 : 1
            const p = pub.publish('loop/m', `${qos}:${sent++}`, qos)
            inFlight.add(p)
            p.then(() => inFlight.delete(p))
            if (inFlight.size >= WINDOW) await Promise.race(inFlight)
          }
          await Promise.all(inFlight)
        })()

        // Each cycle: run for a random while, SIGKILL, restart on the same data, both clients resume.
        for (let cycle = 0; cycle < CYCLES; cycle++) {
          await new Promise((r) => setTimeout(r, 100 + rand() * 700))
          await killChild(broker)
          broker = await start(data)
          await Promise.all([sub.reconnect(port), pub.reconnect(port)])
        }
        await new Promise((r) => setTimeout(r, 200 + rand() * 300))
        stop = true
        await publishing
        await pub.idle()
        await pub.publish('loop/end', 'end', 1)
        await sub.receivedPayload('end', 60_000)

        const acknowledged = [...pub.acknowledged.keys()]
        const lost = acknowledged.filter((m) => !sub.received.has(m))
        const twice2 = [...sub.received].filter(([m, n]) => m.startsWith('2:') && n > 1)
        const twice1 = [...sub.received].filter(([m, n]) => m.startsWith('1:') && n > 1)
        const figures = {
          seed,
          cycles: CYCLES,
          published: sent,
          acknowledged: acknowledged.length,
          lost: lost.length,
          qos2Duplicates: twice2.length,
          qos1Redeliveries: twice1.length,
        }
        console.log(`sigkill loop: ${JSON.stringify(figures)}`)
        expect([sub.lostSessions, pub.lostSessions]).toEqual([0, 0])
        expect(lost).toEqual([])
        expect(twice2).toEqual([])
        expect(acknowledged.length).toBeGreaterThan(CYCLES)
      } finally {
        stop = true
        sub.end()
        pub.end()
        await killChild(broker)
      }
    },
    120_000 + CYCLES * 20_000,
  )
})
