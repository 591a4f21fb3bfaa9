import { type ResourceRuntime, RuntimeEvent } from '@proj/resource'
import { natsSkipNote, natsSkipReason, startNatsCluster } from '@proj/test-utils'
import { afterEach, describe, expect, it } from 'vitest'
import { type ClusterNode, joinCluster } from '../src/index.js'

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {})
})

/** A node's relay, delivering what other nodes relay into `got` (the runtime's side of the relay). */
async function relayNode(urls: string[], name: string, relayHoldMs?: number) {
  const node: ClusterNode = await joinCluster({
    servers: urls,
    nodeName: name,
    replicas: 1,
    ...(relayHoldMs !== undefined ? { relayHoldMs } : {}),
  })
  cleanups.push(() => node.close())
  const got: RuntimeEvent[] = []
  node.relay.attach({ dispatchRelayed: (e: RuntimeEvent) => got.push(e) } as unknown as ResourceRuntime)
  return { node, got }
}

const message = (topic: string, n: number, size = 8) => {
  const payload = Buffer.alloc(size, n % 256)
  payload.writeUInt32BE(n, 0)
  const e = new RuntimeEvent('message', topic, '', topic, 1000 + n, 0, undefined, false, {
    qos: 0,
    clientId: 'p',
  })
  e.origin = 'p'
  return e.setPayload(payload, undefined)
}

describe.skipIf(natsSkipReason !== undefined)(`QoS 0 relay between nodes${natsSkipNote}`, () => {
  it('delivers one turn of messages on several topics in order, in batches, never to their origin', async () => {
    const nats = await startNatsCluster({ size: 1 })
    cleanups.push(() => nats.stop())
    const a = await relayNode(nats.urls, 'a')
    const b = await relayNode(nats.urls, 'b')
    await a.node.nats.flush()
    // one synchronous run: runs of one topic, topic changes, and batches past 64 KiB (1 KiB payloads)
    const sent: RuntimeEvent[] = []
    for (let n = 0; n < 400; n++) sent.push(message(n % 50 < 40 ? 't/1' : `t/${n % 3}`, n, 1024))
    for (const e of sent) a.node.relay.relay(e)
    await expect.poll(() => b.got.length, { timeout: 10_000 }).toBe(sent.length)
    const seen = (e: RuntimeEvent) => [e.topic, e.timestamp, e.origin, e.meta, Buffer.from(e.payload!)]
    expect(b.got.map(seen)).toEqual(sent.map(seen))
    // a sentinel from b reaches a: a's own messages, relayed before, would have too
    b.node.relay.relay(message('sentinel', 1))
    await expect.poll(() => a.got.map((e) => e.topic), { timeout: 10_000 }).toEqual(['sentinel'])
  }, 60_000)

  it('sends the messages of the turns within the hold after a batch as one batch', async () => {
    const nats = await startNatsCluster({ size: 1 })
    cleanups.push(() => nats.stop())
    const a = await relayNode(nats.urls, 'a', 500)
    const b = await relayNode(nats.urls, 'b')
    let batches = 0
    const sub = b.node.nats.subscribe('proj.q.>', {
      callback: () => {
        batches++
      },
    })
    cleanups.push(async () => sub.unsubscribe())
    await a.node.nats.flush()
    await b.node.nats.flush()
    const sent = [message('t/first', 0)]
    a.node.relay.relay(sent[0]!) // after a quiet spell: at the end of this turn
    await expect.poll(() => b.got.length, { timeout: 10_000 }).toBe(1)
    // ten more, one per event-loop turn, well within the hold after the first batch: one batch
    for (let n = 1; n <= 10; n++) {
      await new Promise((resolve) => setImmediate(resolve))
      sent.push(message(n % 2 === 0 ? 't/even' : 't/odd', n))
      a.node.relay.relay(sent.at(-1)!)
    }
    await expect.poll(() => b.got.length, { timeout: 10_000 }).toBe(sent.length)
    expect(b.got.map((e) => [e.topic, e.timestamp])).toEqual(sent.map((e) => [e.topic, e.timestamp]))
    expect(batches).toBe(2)
  }, 60_000)
})
