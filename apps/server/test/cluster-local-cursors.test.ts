// Cursors handed out by a node with `cluster.ack: local` must be cluster-wide positions: a durable session
// that leaves such a node for another receives every QoS 2 message it missed exactly once, and an SSE
// stream resumed on another node with the Last-Event-ID of the first neither repeats nor skips an event.
// The node delivers its own writes to its subscribers when it commits them, before they are in the
// stream; those are the events whose cursors differ between nodes.
//
// packages/cluster/README.md, "Positions under `ack: local`": such a node's cursor travels with its node
// id (an MQTT session keeps it per subscription, an SSE id is `<cursor>.<node id, base 36>`), and the
// node reading after it leaves out what the issuer had delivered ahead of the stream. Before that, both
// repeated the first node's last own event.
import { expect, it } from 'vitest'
import {
  AUTH,
  collectPayloads as collect,
  describeCluster,
  send,
  useMqttCluster,
  within,
} from './helpers/cluster.js'

const NODES = ['a', 'b', 'c']

describeCluster('cursors of nodes with ack: local, on another node', () => {
  const fixture = useMqttCluster(NODES, { env: { PROJ_CLUSTER_ACK: 'local' } })
  const mqttOn = fixture.mqttOn.bind(fixture)

  it('moves a durable session from a node to another: every QoS 2 message it missed exactly once', async () => {
    const options = { clientId: 'cursor-roamer', protocolVersion: 5 as const, clean: false }
    const props = { properties: { sessionExpiryInterval: 300 } }
    const onA = await mqttOn('a', { ...options, ...props })
    const gotOnA = collect(onA)
    await onA.subscribeAsync({ 'cur/q2': { qos: 2 } })
    const localPublisher = await mqttOn('a', { protocolVersion: 5 })
    const remotePublisher = await mqttOn('c', { protocolVersion: 5 })
    // received on a: messages from c (in the stream before a delivers them) and from a itself
    // (delivered on a when committed, before the stream has them)
    const seen: string[] = []
    for (let i = 0; i < 10; i++) {
      const from = i % 2 === 0 ? remotePublisher : localPublisher
      await within(`publish m${i}`, from.publishAsync('cur/q2', `m${i}`, { qos: 2 }))
      seen.push(`m${i}`)
      await expect.poll(() => gotOnA('cur/q2').length, { timeout: 10_000 }).toBe(seen.length)
    }
    await onA.endAsync()
    // missed while away: from both nodes
    const missed: string[] = []
    for (let i = 10; i < 16; i++) {
      const from = i % 2 === 0 ? remotePublisher : localPublisher
      await within(`publish m${i}`, from.publishAsync('cur/q2', `m${i}`, { qos: 2 }))
      missed.push(`m${i}`)
    }
    const { got, sessionPresent } = await fixture.resumeOn('b', { ...options, ...props }, collect)
    expect(sessionPresent).toBe(true)
    await within('publish end', remotePublisher.publishAsync('cur/q2', 'end', { qos: 2 }))
    await expect.poll(() => got('cur/q2').at(-1), { timeout: 15_000 }).toBe('end')
    // nothing received on a again, nothing missed, each once
    expect([...got('cur/q2')].sort()).toEqual([...missed, 'end'].sort())
  }, 60_000)

  it('resumes an SSE stream of a node on another node with its Last-Event-ID: no repeat, no gap', async () => {
    const [a, b, c] = NODES.map((n) => fixture.cluster.node(n).http) as [string, string, string]
    const put = async (i: number) => {
      const node = i % 2 === 0 ? c : a
      expect((await send(node, 'PUT', `Dog/sse${i}`, { name: `sse${i}` })).status).toBeLessThan(300)
    }
    // a stream on a, read while a writes and another node writes
    const first = await openEvents(a)
    for (let i = 0; i < 6; i++) {
      await put(i)
      await first.until((events) => events.length === i + 1)
    }
    first.close()
    const lastId = first.events.at(-1)!.id
    for (let i = 6; i < 10; i++) await put(i)
    // resumed on b after the last id a sent: the four writes after it, each once
    const resumed = await openEvents(b, lastId)
    await resumed.until((events) => events.some((e) => e.name === 'sse9'))
    await new Promise((r) => setTimeout(r, 500)) // anything repeated after it would have come by now
    resumed.close()
    expect(resumed.events.map((e) => e.name).sort()).toEqual(['sse6', 'sse7', 'sse8', 'sse9'])
  }, 60_000)
})

/** An SSE stream of the Dog table on `http` (after `lastEventId`): its events with an id and a dog's name. */
async function openEvents(http: string, lastEventId?: string) {
  const controller = new AbortController()
  const res = await fetch(`${http}/Dog/`, {
    headers: {
      Authorization: AUTH,
      Accept: 'text/event-stream',
      ...(lastEventId !== undefined ? { 'Last-Event-ID': lastEventId } : {}),
    },
    signal: controller.signal,
  })
  expect(res.status).toBe(200)
  const events: { id: string; name: string }[] = []
  const waiters = new Set<() => void>()
  void (async () => {
    const decoder = new TextDecoder()
    let buffer = ''
    try {
      for await (const chunk of res.body!) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true })
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const id = /^id: ?(.*)$/m.exec(block)?.[1]
          const name = /"name":"(sse\d+)"/.exec(block)?.[1]
          if (id !== undefined && name !== undefined) events.push({ id, name })
        }
        for (const wake of waiters) wake()
      }
    } catch {
      // aborted
    }
  })()
  return {
    events,
    until(check: (events: { id: string; name: string }[]) => boolean): Promise<void> {
      return within(
        'SSE events',
        new Promise<void>((resolve) => {
          const wake = () => {
            if (!check(events)) return
            waiters.delete(wake)
            resolve()
          }
          waiters.add(wake)
          wake()
        }),
        15_000,
      )
    },
    close: () => controller.abort(),
  }
}
