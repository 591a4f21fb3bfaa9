/**
 * The long fuzz mode, run by `pnpm fuzz` (see scripts/fuzz.mjs for its flags): FUZZ_COUNT inputs (a
 * million by default) from FUZZ_SEED, or with FUZZ_REPLAY one input alone, against the built server.
 */
import { writeFileSync } from 'node:fs'
import { expect, it } from 'vitest'
import { Control } from './control.js'
import { replayInput, runFuzz } from './driver.js'
import { useFuzzServer } from './fuzz-server.js'
import { describeInput } from './input.js'

const env = process.env
const SEED = Number(env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31))
const say = (line: string) => process.stderr.write(`${line}\n`)

const fuzzed = useFuzzServer()

it.runIf(env.FUZZ_REPLAY !== undefined)(`replay input ${env.FUZZ_REPLAY} of seed ${SEED}`, async () => {
  const { server, before } = fuzzed
  const { input, outcome } = await replayInput(server, SEED, Number(env.FUZZ_REPLAY))
  say(`${describeInput(input, 100_000)}\n  outcome: ${outcome}`)
  const control = await Control.open(server.process.listeners.mqtt!.url)
  await control.roundTrip(10_000)
  await control.close()
  expect(server.process.child.exitCode).toBeNull()
  expect(outcome).not.toBe('timeout')
  expect(await server.guardSnapshot()).toBe(before)
})

it.runIf(env.FUZZ_REPLAY === undefined)(`long run (seed ${SEED})`, async () => {
  const { server, before } = fuzzed
  const count = Number(env.FUZZ_COUNT ?? 1_000_000)
  say(`fuzz: seed ${SEED}, ${count} inputs; replay one with: pnpm fuzz --seed ${SEED} --replay <index>`)
  const report = await runFuzz(server, {
    seed: SEED,
    count,
    lanes: Number(env.FUZZ_LANES ?? 8),
    rssLimitMb: Number(env.FUZZ_RSS_LIMIT_MB ?? 512),
    ...(env.FUZZ_MINUTES !== undefined ? { timeLimitMs: Number(env.FUZZ_MINUTES) * 60_000 } : {}),
    log: say,
  })
  const json = JSON.stringify(report, null, 1)
  say(`fuzz report:\n${json}`)
  if (env.FUZZ_REPORT !== undefined) writeFileSync(env.FUZZ_REPORT, json)
  expect(report.unanswered, JSON.stringify(report.unanswered, null, 1)).toEqual([])
  expect(server.process.output()).not.toContain('uncaught exception')
  expect(await server.guardSnapshot()).toBe(before)
})
