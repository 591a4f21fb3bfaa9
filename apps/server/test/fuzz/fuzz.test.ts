import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runFuzz } from './driver.js'
import { type FuzzServer, startFuzzServer } from './fuzz-server.js'

/** The bounded run of `pnpm fuzz` (which runs a million): a fixed seed, a few thousand inputs. */
const SEED = 20261202
const COUNT = 400

describe('fuzz: generated and mutated packets of every type, MQTT 3.1.1 and 5, against the built server', () => {
  let server: FuzzServer
  let before: string

  beforeAll(async () => {
    server = await startFuzzServer()
    before = await server.guardSnapshot()
  })

  afterAll(async () => {
    const code = await server?.stop()
    expect(code, server?.process.output()).toBe(0)
  })

  it(`${COUNT} inputs (seed ${SEED}): the server stays up, the control client keeps its round trip, nothing guarded changes`, async () => {
    const report = await runFuzz(server, { seed: SEED, count: COUNT, rssLimitMb: 200 })
    expect(report.inputs).toBe(COUNT)
    expect(report.unanswered, JSON.stringify(report.unanswered, null, 1)).toEqual([])
    expect(report.roundTrips).toBeGreaterThan(0)
    expect(server.process.output()).not.toContain('uncaught exception')
    expect(await server.guardSnapshot()).toBe(before)
  })
})
