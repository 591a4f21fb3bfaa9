import { connect, type NatsConnection } from '@nats-io/transport-node'
import { RuntimeEvent } from '@proj/resource'
import { natsSkipNote, natsSkipReason, startNatsCluster } from '@proj/test-utils'
import { afterEach, describe, expect, it } from 'vitest'
import { batchHeader, FrameWriter, readFrames } from '../src/relay-frame.js'
import { RelayGaps, RelayHistory, serveReplays } from '../src/relay-replay.js'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const ORIGIN = 7
const PREFIX = 'proj'

/** A batch of one message whose payload is `n`, numbered by `history` as the relay does when it sends. */
function batch(history: RelayHistory, n: number): Uint8Array {
  const writer = new FrameWriter(ORIGIN)
  const e = new RuntimeEvent('message', 't', '', 't', 1000 + n, 0, undefined, false, { qos: 0 })
  writer.write(e.setPayload(Buffer.from(String(n)), undefined), null)
  return history.stamp(writer.bytes())
}

/**
 * An origin (its history answering on one NATS connection) and a receiver (its gaps on another), over a
 * real nats-server; `got` is what the receiver delivered, in order, `warnings` what it logged.
 */
async function pair() {
  const nats = await startNatsCluster({ size: 1 })
  cleanups.push(() => nats.stop())
  const connections: NatsConnection[] = []
  for (let i = 0; i < 2; i++) connections.push(await connect({ servers: nats.urls }))
  cleanups.push(() => Promise.all(connections.map((c) => c.close())).then(() => {}))
  const [originNc, receiverNc] = connections as [NatsConnection, NatsConnection]
  const history = new RelayHistory()
  const warnings: string[] = []
  const log = { warn: (_o: unknown, msg: string) => warnings.push(msg), info() {}, error() {}, debug() {} }
  const got: string[] = []
  const gaps = new RelayGaps(receiverNc, PREFIX, log as never, (bytes) =>
    readFrames(bytes, (event) => got.push(Buffer.from(event.payload!).toString())),
  )
  cleanups.push(() => gaps.close())
  // the origin answers replay requests; it has no gaps of its own here
  const stop = serveReplays(
    originNc,
    PREFIX,
    ORIGIN,
    history,
    new RelayGaps(originNc, PREFIX, log as never, () => {}),
  )
  cleanups.push(stop)
  await originNc.flush()
  return { history, gaps, got, warnings }
}

describe.skipIf(natsSkipReason !== undefined)(`QoS 0 relay replay${natsSkipNote}`, () => {
  it('numbers batches within one epoch', () => {
    const history = new RelayHistory()
    const one = batchHeader(batch(history, 1))
    const two = batchHeader(batch(history, 2))
    expect(one).toEqual({ origin: ORIGIN, epoch: history.epoch, seq: 1 })
    expect(two.seq).toBe(2)
  })

  it('asks the origin for a batch it missed and delivers everything once, in order', async () => {
    const { history, gaps, got } = await pair()
    const sent = Array.from({ length: 6 }, (_, n) => batch(history, n))
    // batches 2 and 3 lost on the way; 5 arrives twice
    for (const i of [0, 1, 4, 5, 5]) gaps.receive(sent[i]!)
    expect(got).toEqual(['0', '1'])
    await expect.poll(() => got, { timeout: 5000 }).toEqual(['0', '1', '2', '3', '4', '5'])
    // a late original of a replayed batch is not delivered again
    gaps.receive(sent[2]!)
    expect(got).toEqual(['0', '1', '2', '3', '4', '5'])
  })

  it('learns from a tick that the last batches before a quiet spell were lost, and gets them', async () => {
    const { history, gaps, got } = await pair()
    const sent = Array.from({ length: 4 }, (_, n) => batch(history, n))
    gaps.receive(sent[0]!)
    gaps.tick(ORIGIN, history.epoch, 4)
    await expect.poll(() => got, { timeout: 5000 }).toEqual(['0', '1', '2', '3'])
  })

  it('gives up what the origin no longer holds (another epoch), logs it, and delivers the batches after it', async () => {
    const { history, gaps, got, warnings } = await pair()
    // numbered by a run of the origin whose history is gone (the node restarted meanwhile)
    const gone = new RelayHistory()
    Object.defineProperty(gone, 'epoch', { value: history.epoch })
    const sent = Array.from({ length: 3 }, (_, n) => batch(gone, n))
    gaps.receive(sent[0]!)
    gaps.receive(sent[2]!)
    await expect.poll(() => got, { timeout: 5000 }).toEqual(['0', '2'])
    expect(warnings.some((w) => /lost/.test(w))).toBe(true)
  })
})
