import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { natsSkipNote, natsSkipReason, startNatsCluster } from '@proj/test-utils'
import { afterEach, describe, expect, it } from 'vitest'
import { StreamPublisher } from '../src/stream-publisher.js'

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {})
})

describe.skipIf(natsSkipReason !== undefined)(`StreamPublisher${natsSkipNote}`, () => {
  it('answers with the stream sequence, once per Nats-Msg-Id, and fails without a stream or past max_payload', async () => {
    const nats = await startNatsCluster({ size: 1 })
    cleanups.push(() => nats.stop())
    const nc = await connect({ servers: nats.urls })
    cleanups.push(() => nc.close())
    const jsm = await jetstreamManager(nc)
    await jsm.streams.add({ name: 's', subjects: ['s.>'] })
    const publisher = new StreamPublisher(nc)
    cleanups.push(async () => publisher.close())

    const acks = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        publisher.publish(`s.${i % 7}`, Buffer.from([i]), `id-${i}`, 5000),
      ),
    )
    expect(acks.map((a) => a.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1))
    expect(await publisher.publish('s.x', Buffer.from([1]), 'id-3', 5000)).toEqual({
      seq: 4,
      duplicate: true,
    })
    const stored = await jsm.streams.getMessage('s', { seq: 200 })
    expect(stored?.data).toEqual(new Uint8Array([199]))
    expect(stored?.header.get('Nats-Msg-Id')).toBe('id-199')

    // no stream listens there: NATS answers "no responders" at once, well before the timeout
    const started = Date.now()
    await expect(publisher.publish('nostream.a', Buffer.from([1]), 'x', 5000)).rejects.toThrow(
      /no responders/,
    )
    expect(Date.now() - started).toBeLessThan(4000)
    expect(() => publisher.publish('s.big', Buffer.alloc(2 * 1024 * 1024), 'big', 5000)).toThrow(
      /max_payload/,
    )
  }, 60_000)

  it('fails a publish whose acknowledgement does not come in time, and every waiting one on close', async () => {
    const nats = await startNatsCluster({ size: 1 })
    cleanups.push(() => nats.stop())
    const nc = await connect({ servers: nats.urls })
    cleanups.push(() => nc.close())
    // a responder that never answers stands in for a stream leader that is gone
    nc.subscribe('silent.>', { callback: () => {} })
    await nc.flush()
    const publisher = new StreamPublisher(nc)
    const started = Date.now()
    await expect(publisher.publish('silent.a', Buffer.from([1]), 'a', 300)).rejects.toThrow(/timeout/)
    expect(Date.now() - started).toBeGreaterThanOrEqual(290)
    const waiting = publisher.publish('silent.b', Buffer.from([1]), 'b', 60_000)
    publisher.close()
    await expect(waiting).rejects.toThrow(/closing/)
  }, 60_000)
})
