import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const app = join(dirname(fileURLToPath(import.meta.url)), '..')
const repo = join(app, '..', '..')

function newestSource(dir: string): number {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs)
  }
  return newest
}

/**
 * The end-to-end suites run the BUILT server (dist/cli.js) as a child process. The root `pnpm test`
 * builds first; when run alone (`pnpm vitest run --project server`) this builds the server and the
 * packages it references if dist is missing or older than any of their sources.
 */
export default function setup(): void {
  const cli = join(app, 'dist', 'cli.js')
  const sources = [
    join(app, 'src'),
    ...readdirSync(join(repo, 'packages')).map((p) => join(repo, 'packages', p, 'src')),
  ]
  const built = existsSync(cli) ? statSync(cli).mtimeMs : 0
  if (built > Math.max(...sources.filter(existsSync).map(newestSource))) return
  try {
    execFileSync(join(repo, 'node_modules', '.bin', 'tsc'), ['-b', join(app, 'tsconfig.json')], {
      cwd: repo,
      stdio: 'inherit',
      timeout: 240_000,
    })
  } catch {
    // the unit suites do not need dist; the end-to-end suites will fail and show the server's output
    console.warn(
      '\n@proj/server: `tsc -b apps/server` failed; the end-to-end suites will run whatever dist holds\n',
    )
  }
}
