// A node killed with SIGKILL: what it acknowledged over MQTT reaches subscribers elsewhere, and its
// durable sessions resume on another node with every QoS 1 message published after it died.
import { natsSkipReason } from '@proj/test-utils'
import { describe, expect, it } from 'vitest'
import { collectPayloads, useMqttCluster, within } from './helpers/cluster.js'

const NODES = ['a', 'b', 'c']

describe.skipIf(natsSkipReason !== undefined)(
  `MQTT clients of a node killed with SIGKILL${natsSkipReason ? ` (skipped: ${natsSkipReason})` : ''}`,
  () => {
    const fixture = useMqttCluster(NODES)

    it('delivers every QoS 1 message the killed node acknowledged to a subscriber on another node', async () => {
      const subscriber = await fixture.mqttOn('b', { protocolVersion: 5 })
      const got = collectPayloads(subscriber)
      await subscriber.subscribeAsync('loss/acked', { qos: 1 })
      const publisher = await fixture.mqttOn('a', { protocolVersion: 5 })
      publisher.on('error', () => {}) // the node is killed under it
      const acknowledged: string[] = []
      const closed = new Promise<void>((resolve) => publisher.once('close', () => resolve()))
      void (async () => {
        // publishes one at a time until the node dies (the pending PUBLISH then never settles)
        for (let i = 0; publisher.connected; i++) {
          await publisher.publishAsync('loss/acked', `m${i}`, { qos: 1 })
          acknowledged.push(`m${i}`)
        }
      })().catch(() => {})
      await expect.poll(() => acknowledged.length, { timeout: 10_000 }).toBeGreaterThan(50)
      fixture.cluster.node('a').process.child.kill('SIGKILL')
      await fixture.cluster.node('a').process.exited
      // once the socket is closed, every PUBACK the node sent before it died has been read
      await within('publisher closed', closed)
      const acked = [...acknowledged]
      publisher.end(true)
      await expect
        .poll(() => acked.filter((m) => !got('loss/acked').includes(m)), { timeout: 15_000 })
        .toEqual([])
    }, 60_000)

    it('resumes a durable session of the killed node on another, with every QoS 1 message it missed', async () => {
      await fixture.cluster.start('a')
      const session = {
        clientId: 'survivor',
        protocolVersion: 5 as const,
        clean: false,
        properties: { sessionExpiryInterval: 300 },
      }
      const onA = await fixture.mqttOn('a', session)
      onA.on('error', () => {})
      await onA.subscribeAsync('loss/missed', { qos: 1 })
      fixture.cluster.node('a').process.child.kill('SIGKILL')
      await fixture.cluster.node('a').process.exited
      onA.end(true)

      const publisher = await fixture.mqttOn('c', { protocolVersion: 5 })
      const sent = Array.from({ length: 20 }, (_, i) => `k${i}`)
      for (const m of sent) await within(`publish ${m}`, publisher.publishAsync('loss/missed', m, { qos: 1 }))

      const { got, sessionPresent } = await fixture.resumeOn('b', session, collectPayloads)
      expect(sessionPresent).toBe(true)
      await within('sentinel', publisher.publishAsync('loss/missed', 'end', { qos: 1 }))
      await expect.poll(() => got('loss/missed').at(-1), { timeout: 15_000 }).toBe('end')
      expect(new Set(got('loss/missed'))).toEqual(new Set([...sent, 'end']))
    }, 90_000)
  },
)
