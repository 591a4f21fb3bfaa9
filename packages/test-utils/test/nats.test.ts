import { describe, expect, it, vi } from 'vitest'
import { natsSkipNote, natsSkipReason, startNatsCluster } from '../src/index.js'

describe.skipIf(natsSkipReason !== undefined)(`startNatsCluster${natsSkipNote}`, () => {
  it('starts three JetStream servers as one cluster, kills one and restarts it on the same ports', async () => {
    await using nats = await startNatsCluster({ size: 3 })
    expect(nats.urls).toHaveLength(3)
    const jsz = async (i: number) =>
      (await (await fetch(`http://127.0.0.1:${nats.servers[i]!.httpPort}/jsz`)).json()) as {
        meta_cluster: { leader?: string; cluster_size: number }
      }
    expect((await jsz(0)).meta_cluster.cluster_size).toBe(3)
    const pid = nats.servers[1]!.pid
    await nats.kill(1)
    expect(nats.servers[1]!.running).toBe(false)
    await nats.restart(1)
    expect(nats.servers[1]!.pid).not.toBe(pid)
    // the restarted server learns the meta leader a moment after it answers /jsz
    await vi.waitFor(async () => expect((await jsz(1)).meta_cluster.leader).toBeTruthy(), { timeout: 15_000 })
  }, 60_000)
})
