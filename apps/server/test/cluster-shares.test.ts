import { natsSkipNote, natsSkipReason } from '@proj/test-utils'
import { describe, expect, it } from 'vitest'
import { collectPayloads as collect, useMqttCluster, within } from './helpers/cluster.js'

const NODES = ['a', 'b', 'c']
const ROUNDS = 4

describe.skipIf(natsSkipReason !== undefined)(
  `shared subscriptions across a cluster with a stalling node${natsSkipNote}`,
  () => {
    const fixture = useMqttCluster(NODES)
    const mqttOn = fixture.mqttOn.bind(fixture)

    // Runs first: the QoS 0 rounds need a cluster that knows no group yet.
    it('delivers each message to at most one member while a new group is created (QoS 1: each one after the SUBACKs exactly once)', async () => {
      const publisher = await mqttOn('a', { protocolVersion: 5 })
      const twice: string[] = []
      const missing: string[] = []
      for (const qos of [0, 1] as const) {
        for (let round = 0; round < ROUNDS; round++) {
          const topic = `new/q${qos}/r${round}`
          // the group's first members, on b and c, subscribe at once while a publishes
          const members = await Promise.all(['b', 'c'].map((n) => mqttOn(n, { protocolVersion: 5 })))
          const seen = members.map(collect)
          const sent: number[] = []
          let stop = false
          const pump = async () => {
            while (!stop) {
              const i = sent.length
              sent.push(i)
              if (qos === 1) await within(`publish ${i}`, publisher.publishAsync(topic, `${i}`, { qos }))
              else {
                publisher.publish(topic, `${i}`, { qos })
                await new Promise((r) => setTimeout(r, 1))
              }
            }
          }
          const pumps = Promise.all(Array.from({ length: qos === 1 ? 4 : 1 }, pump))
          await new Promise((r) => setTimeout(r, 30))
          await Promise.all(
            members.map((m) =>
              m.subscribeAsync({ [`$share/g${qos}r${round}/${topic}`]: { qos }, [`end/${topic}`]: { qos } }),
            ),
          )
          const acknowledged = sent.length // published after both SUBACKs: this index and later
          while (sent.length < acknowledged + 40) await new Promise((r) => setTimeout(r, 5))
          stop = true
          await pumps
          // each node delivers the sentinel after the messages published before it (same QoS)
          await publisher.publishAsync(`end/${topic}`, 'end', { qos })
          for (const [i] of members.entries())
            await expect.poll(() => seen[i]!(`end/${topic}`), { timeout: 15_000 }).toEqual(['end'])
          const got = members.flatMap((_, i) => seen[i]!(topic))
          const once = new Set<string>()
          twice.push(...got.filter((p) => once.size === once.add(p).size).map((p) => `${topic}:${p}`))
          if (qos === 1)
            missing.push(
              ...sent
                .slice(acknowledged)
                .filter((i) => !once.has(`${i}`))
                .map((i) => `${topic}:${i}`),
            )
          for (const m of members) m.end(true)
        }
      }
      expect(twice).toEqual([])
      expect(missing).toEqual([])
    }, 120_000)

    it('delivers each message once while a member node stalls (SIGSTOP) for less than the lease', async () => {
      // two members on a, one on b; the publisher on b
      const members = await Promise.all(['a', 'a', 'b'].map((n) => mqttOn(n, { protocolVersion: 5 })))
      const seen = members.map(collect)
      for (const m of members)
        await m.subscribeAsync({ '$share/st/stall/#': { qos: 1 }, 'end/stall': { qos: 1 } })
      const publisher = await mqttOn('b', { protocolVersion: 5 })
      const got = () => members.flatMap((_, i) => seen[i]!('stall/m'))
      // both nodes' memberships in effect: each node's members receive some of the group's messages
      let warm = 0
      const onA = () => seen[0]!('stall/w').length + seen[1]!('stall/w').length
      while (onA() === 0 || seen[2]!('stall/w').length === 0) {
        await within('warm-up publish', publisher.publishAsync('stall/w', `w${warm++}`, { qos: 1 }))
        if (warm > 200) throw new Error('the group never reached both nodes')
      }

      const a = fixture.cluster.node('a').process.child
      const sent: string[] = []
      const publish = async (ms: number) => {
        const until = Date.now() + ms
        while (Date.now() < until) {
          const payload = `m${sent.length}`
          await within(`publish ${payload}`, publisher.publishAsync('stall/m', payload, { qos: 1 }))
          sent.push(payload)
        }
      }
      await publish(300)
      a.kill('SIGSTOP')
      try {
        // b stops hearing a; a's turns stay a's (it delivers them when it runs again), none are b's too
        await publish(3700)
      } finally {
        a.kill('SIGCONT')
      }
      await publish(1000)
      await publisher.publishAsync('end/stall', 'end', { qos: 1 })
      for (const [i] of members.entries())
        await expect.poll(() => seen[i]!('end/stall'), { timeout: 20_000 }).toEqual(['end'])
      await expect.poll(() => got().length, { timeout: 10_000 }).toBeGreaterThanOrEqual(sent.length)
      const all = got()
      const once = new Set<string>()
      const twice = all.filter((p) => once.size === once.add(p).size)
      expect(twice).toEqual([])
      expect(new Set(all)).toEqual(new Set(sent))
      // a took its turns after the stall too
      expect(seen[0]!('stall/m').length + seen[1]!('stall/m').length).toBeGreaterThan(0)
    }, 90_000)
  },
)
