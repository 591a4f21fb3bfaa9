/**
 * Exactly once across SIGKILL, at every crash point: the broker stops itself right after a named step of
 * the QoS 1/2 flows (`--stop-after`), restarts on the same data, and clients that keep their session state
 * as MQTT requires resume. Nothing acknowledged is lost and no QoS 2 message reaches the application twice.
 */
import { join } from 'node:path'
import { tempDir } from '@proj/test-utils'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FlowStep } from '../src/index.js'
import { buildBroker, type ChildBroker, killChild, startChild } from './child-broker.js'
import { ExactReceiver, ResumingPublisher } from './qos-clients.js'

const running = new Set<ChildBroker>()
beforeAll(buildBroker, 300_000)
afterAll(async () => {
  for (const b of running) await killChild(b)
})

async function start(data: string, args: string[] = []): Promise<ChildBroker> {
  const b = await startChild(data, args)
  running.add(b)
  b.exited.then(() => running.delete(b))
  return b
}

const CASES: [FlowStep, 1 | 2][] = [
  ['outbound-publish-persisted', 1],
  ['outbound-publish-sent', 1],
  ['outbound-complete-persisted', 1],
  ['inbound-publish-persisted', 1],
  ['inbound-puback-sent', 1],
  ['outbound-publish-persisted', 2],
  ['outbound-publish-sent', 2],
  ['outbound-pubrel-persisted', 2],
  ['outbound-pubrel-sent', 2],
  ['outbound-complete-persisted', 2],
  ['inbound-publish-persisted', 2],
  ['inbound-pubrec-sent', 2],
  ['inbound-pubrel-persisted', 2],
  ['inbound-pubcomp-sent', 2],
]

describe('exactly once across SIGKILL at every crash point', () => {
  it.each(CASES)(
    'stopped right after %s (QoS %s): delivered once after the restart',
    async (step, qos) => {
      await using tmp = await tempDir('mqtt-crash-point-')
      const data = join(tmp.path, 'db')
      let broker = await start(data, ['--stop-after', step])
      const sub = new ExactReceiver('cp-sub')
      const pub = new ResumingPublisher('cp-pub')
      try {
        await sub.connect(broker.port)
        await sub.subscribe('cp/#', 2)
        await pub.connect(broker.port)
        const acked = pub.publish('cp/m', 'm', qos)
        // The broker reaches the step and kills itself.
        expect(await broker.exited).toBe('SIGKILL')
        broker = await start(data)
        const port = () => broker.port
        await sub.reconnect(port)
        await pub.reconnect(port)
        await acked
        await pub.idle()
        // A sentinel published after it: once it has arrived, so has everything that will.
        await pub.publish('cp/end', 'end', 1)
        await sub.receivedPayload('end')
        await sub.receivedPayload('m')
        await pub.idle()
        expect([sub.lostSessions, pub.lostSessions]).toEqual([0, 0])
        if (qos === 2) expect(sub.received.get('m')).toBe(1)
        else expect(sub.received.get('m')).toBeGreaterThanOrEqual(1)
      } finally {
        sub.end()
        pub.end()
        await killChild(broker)
      }
    },
    60_000,
  )

  it('stopped right after a normal DISCONNECT committed the discard of the will: the will is never published', async () => {
    await using tmp = await tempDir('mqtt-crash-point-')
    const data = join(tmp.path, 'db')
    let broker = await start(data, ['--stop-after', 'will-discard-persisted'])
    const sub = new ExactReceiver('wd-sub')
    const pub = new ResumingPublisher('wd-pub')
    try {
      await sub.connect(broker.port)
      await sub.subscribe('wd/#', 1)
      const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, {
        clientId: 'wd-will',
        reconnectPeriod: 0,
        will: { topic: 'wd/will', payload: Buffer.from('will'), qos: 1, retain: false },
      })
      // DISCONNECT 0x00: the will must be gone for good, even if the process dies the next moment.
      await client.endAsync()
      expect(await broker.exited).toBe('SIGKILL')
      broker = await start(data)
      const port = () => broker.port
      await sub.reconnect(port)
      // Wills left pending by the dead process go out at start; the sentinel comes after them.
      await pub.reconnect(port)
      await pub.publish('wd/end', 'end', 1)
      await sub.receivedPayload('end')
      expect([sub.lostSessions, sub.received.get('will')]).toEqual([0, undefined])
    } finally {
      sub.end()
      pub.end()
      await killChild(broker)
    }
  }, 60_000)

  it('stopped right after a takeover persisted the session, before its CONNACK: the QoS 2 flow completes once', async () => {
    await using tmp = await tempDir('mqtt-crash-point-')
    const data = join(tmp.path, 'db')
    // The receiver's third CONNECT (the first two: subscriber, publisher) takes over its own session.
    let broker = await start(data, ['--stop-after', 'connect-persisted:3'])
    const sub = new ExactReceiver('tk-sub')
    const pub = new ResumingPublisher('tk-pub')
    try {
      await sub.connect(broker.port)
      await sub.subscribe('tk/#', 2)
      await pub.connect(broker.port)
      await pub.publish('tk/m', 'm', 2)
      await sub.receivedPayload('m')
      const second = new ExactReceiver('tk-sub')
      await expect(second.connect(broker.port)).rejects.toThrow(/before CONNACK/)
      expect(await broker.exited).toBe('SIGKILL')
      broker = await start(data)
      const port = () => broker.port
      await sub.reconnect(port)
      await pub.reconnect(port)
      await pub.idle()
      await pub.publish('tk/end', 'end', 1)
      await sub.receivedPayload('end')
      expect([sub.lostSessions, pub.lostSessions, sub.received.get('m')]).toEqual([0, 0, 1])
    } finally {
      sub.end()
      pub.end()
      await killChild(broker)
    }
  }, 60_000)
})
