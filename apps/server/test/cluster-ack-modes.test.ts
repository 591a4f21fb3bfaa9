import { natsSkipNote, natsSkipReason } from '@proj/test-utils'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AUTH, startClusterNodes, waitReady } from './helpers/cluster.js'

/**
 * Measurement, not a check (packages/cluster/README.md "Acknowledgement" quotes it): REST PUTs on a node
 * with `cluster.ack: replicated` and on one with `local`, in one cluster and one run, alternating.
 * Run alone: `BENCH_ACK_MODES=1 pnpm vitest run test/cluster-ack-modes.test.ts` (about a minute).
 */
const run = process.env.BENCH_ACK_MODES === '1'
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const SEQUENTIAL = 200
const PARALLEL = 16
const BURST = 1500

async function put(http: string, id: string): Promise<number> {
  const started = performance.now()
  const res = await fetch(`${http}/Dog/${id}`, {
    method: 'PUT',
    headers: { Authorization: AUTH, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: id }),
  })
  await res.arrayBuffer()
  if (res.status >= 300) throw new Error(`PUT ${id}: ${res.status}`)
  return performance.now() - started
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

describe.skipIf(!run || natsSkipReason !== undefined)(
  `cluster.ack replicated vs local${run ? '' : ' (skipped: set BENCH_ACK_MODES=1)'}${natsSkipNote}`,
  () => {
    let cluster: Awaited<ReturnType<typeof startClusterNodes>>
    beforeAll(async () => {
      cluster = await startClusterNodes(['a', 'b', 'c'], { env: { PROJ_CLUSTER_WRITETIMEOUT: '10s' } })
      // b acknowledges locally; a and c replicated
      await cluster.node('b').process.stop(5000)
      await waitReady((await cluster.start('b', { PROJ_CLUSTER_ACK: 'local' })).http)
    }, 120_000)
    afterAll(async () => {
      await cluster?.stop()
    })

    it('PUT p50 (one at a time) and writes/s (16 concurrent), alternating', async () => {
      const modes = { replicated: 'a', local: 'b' } as const
      const results: Record<string, { p50: number[]; rate: number[] }> = {
        replicated: { p50: [], rate: [] },
        local: { p50: [], rate: [] },
      }
      let n = 0
      for (let round = 0; round < ROUNDS; round++) {
        for (const [mode, node] of Object.entries(modes)) {
          const http = cluster.node(node).http
          const latencies: number[] = []
          for (let i = 0; i < SEQUENTIAL; i++) latencies.push(await put(http, `s${n++}`))
          const started = performance.now()
          let next = 0
          await Promise.all(
            Array.from({ length: PARALLEL }, async () => {
              while (next < BURST) {
                next++
                await put(http, `p${n++}`)
              }
            }),
          )
          results[mode]!.p50.push(median(latencies))
          results[mode]!.rate.push(BURST / ((performance.now() - started) / 1000))
        }
      }
      const lines = Object.entries(results).map(
        ([mode, r]) =>
          `${mode}: p50 ms ${r.p50.map((x) => x.toFixed(2)).join(' / ')} (median ${median(r.p50).toFixed(2)}); writes/s ${r.rate.map((x) => x.toFixed(0)).join(' / ')} (median ${median(r.rate).toFixed(0)})`,
      )
      console.log(`cluster.ack, ${ROUNDS} rounds:\n${lines.join('\n')}`)
      expect(results.local!.rate.length).toBe(ROUNDS)
    }, 600_000)
  },
)
