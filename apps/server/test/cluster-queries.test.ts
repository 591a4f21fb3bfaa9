// A durable MQTT session's query subscription is a cluster-wide position: made on one node, resumed on
// another, it gets what happened while away, from writes on a third, with enter and leave computed there.
import { natsSkipReason } from '@proj/test-utils'
import type { MqttClient } from 'mqtt'
import { describe, expect, it } from 'vitest'
import { send, useMqttCluster } from './helpers/cluster.js'

const NODES = ['a', 'b', 'c']

/** What a subscriber got, one line per message: `topic event|payload retain`. */
function transitions(client: MqttClient): string[] {
  const got: string[] = []
  client.on('message', (topic, payload, packet) => {
    const event = packet.properties?.userProperties?.event
    const body =
      payload.length === 0 ? `(${String(event)})` : (JSON.parse(payload.toString()) as { name: string }).name
    got.push(`${topic} ${body}${packet.retain ? ' retained' : ''}`)
  })
  return got
}

describe.skipIf(natsSkipReason !== undefined)(
  `query subscriptions across a cluster of three nodes${natsSkipReason ? ` (skipped: ${natsSkipReason})` : ''}`,
  () => {
    const fixture = useMqttCluster(NODES)
    const http = (name: string) => fixture.cluster.node(name).http

    it('resumes a durable query subscription made on one node on another, with what changed meanwhile on a third', async () => {
      for (const [id, name, breed] of [
        ['q1', 'one', 'Lab'],
        ['q2', 'two', 'Lab'],
        ['q3', 'three', 'Pug'],
      ] as const)
        expect((await send(http('a'), 'PUT', `Dog/${id}`, { name, breed })).status).toBeLessThan(300)
      const session = {
        clientId: 'query-roamer',
        protocolVersion: 5 as const,
        clean: false,
        properties: { sessionExpiryInterval: 300 },
      }
      const onA = await fixture.mqttOn('a', session)
      const first = transitions(onA)
      await onA.subscribeAsync('Dog/?breed=Lab', { qos: 1 })
      await expect
        .poll(() => [...first].sort(), { timeout: 10_000 })
        .toEqual(['Dog/q1 one retained', 'Dog/q2 two retained'])
      await onA.endAsync()

      // while the client is away, on node c: q3 enters, q1 leaves, q2 is deleted, q4 is new and matches,
      // q5 is new and never matches
      expect((await send(http('c'), 'PATCH', 'Dog/q3', { breed: 'Lab' })).status).toBeLessThan(300)
      expect((await send(http('c'), 'PATCH', 'Dog/q1', { breed: 'Poodle' })).status).toBeLessThan(300)
      expect((await send(http('c'), 'DELETE', 'Dog/q2')).status).toBeLessThan(300)
      expect((await send(http('c'), 'PUT', 'Dog/q4', { name: 'four', breed: 'Lab' })).status).toBeLessThan(
        300,
      )
      expect((await send(http('c'), 'PUT', 'Dog/q5', { name: 'five', breed: 'Pug' })).status).toBeLessThan(
        300,
      )

      const { got: resumed, sessionPresent } = await fixture.resumeOn('b', session, transitions)
      expect(sessionPresent).toBe(true)
      await expect.poll(() => resumed.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(4)
      // a sentinel written after the replay: everything before it has arrived when it does
      expect((await send(http('a'), 'PUT', 'Dog/q6', { name: 'six', breed: 'Lab' })).status).toBeLessThan(300)
      await expect.poll(() => resumed.at(-1), { timeout: 10_000 }).toBe('Dog/q6 six')
      expect(resumed).toEqual([
        'Dog/q3 three',
        'Dog/q1 (leave)',
        'Dog/q2 (delete)',
        'Dog/q4 four',
        'Dog/q6 six',
      ])
    }, 60_000)
  },
)
