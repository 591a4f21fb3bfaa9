import { describe, expect, it } from 'vitest'
import { FuzzFailure, runFuzz } from './driver.js'
import { startFuzzServer, useFuzzServer } from './fuzz-server.js'

/** The bounded run of `pnpm fuzz` (which runs a million): a fixed seed, a few thousand inputs. */
const SEED = 20261202
const COUNT = 400

describe('fuzz: generated and mutated packets of every type, MQTT 3.1.1 and 5, against the built server', () => {
  const fuzzed = useFuzzServer()

  it(`${COUNT} inputs (seed ${SEED}): the server stays up, the control client keeps its round trip, nothing guarded changes`, async () => {
    const { server, before } = fuzzed
    const report = await runFuzz(server, { seed: SEED, count: COUNT, rssLimitMb: 200 })
    expect(report.inputs).toBe(COUNT)
    expect(report.unanswered, JSON.stringify(report.unanswered, null, 1)).toEqual([])
    expect(report.roundTrips).toBeGreaterThan(0)
    expect(server.process.output()).not.toContain('uncaught exception')
    expect(await server.guardSnapshot()).toBe(before)
  })
})

describe('fuzz harness', () => {
  it('reports a server that dies mid-run with the seed, the inputs in flight and the command that replays each', async () => {
    const server = await startFuzzServer()
    try {
      const kill = (done: number) => done === 50 && server.process.child.kill('SIGKILL')
      const err = await runFuzz(server, { seed: 7, count: 1_000_000, afterInput: kill }).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(err).toBeInstanceOf(FuzzFailure)
      const message = (err as Error).message
      expect(message).toMatch(/^fuzz failure \(seed 7\): the server process exited/)
      expect(message).toMatch(/lane \d+: input \d+ \(MQTT (3\.1\.1|5) \w+, mutation [\w-]+.*\): [0-9a-f]+/)
      expect(message).toMatch(/replay: pnpm fuzz --seed 7 --replay \d+/)
    } finally {
      await server.stop()
    }
  })
})
