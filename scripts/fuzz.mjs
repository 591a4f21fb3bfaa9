#!/usr/bin/env node
// `pnpm fuzz [--seed N] [--count N] [--replay INDEX] [--lanes N] [--minutes M] [--report FILE]`:
// the long fuzz mode of apps/server/test/fuzz against the built server (see CONTRIBUTING.md).
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const FLAGS = {
  seed: 'FUZZ_SEED',
  count: 'FUZZ_COUNT',
  replay: 'FUZZ_REPLAY',
  lanes: 'FUZZ_LANES',
  minutes: 'FUZZ_MINUTES',
  report: 'FUZZ_REPORT',
}
const { values } = parseArgs({
  options: Object.fromEntries(Object.keys(FLAGS).map((k) => [k, { type: 'string' }])),
  strict: true,
})
const env = { ...process.env }
for (const [flag, name] of Object.entries(FLAGS)) if (values[flag] !== undefined) env[name] = values[flag]

const repo = join(dirname(fileURLToPath(import.meta.url)), '..')
const child = spawn(
  join(repo, 'node_modules', '.bin', 'vitest'),
  ['run', '--config', 'vitest.fuzz.config.ts', '--reporter', 'verbose'],
  { cwd: join(repo, 'apps', 'server'), env, stdio: 'inherit' },
)
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
