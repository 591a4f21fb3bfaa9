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
 * packages it references if dist is missing or older than any of their sources, and the Studio.
 */
/** The Studio's build (served by the server at /studio/): rebuilt with Vite when older than its sources. */
function buildStudio(): void {
  const studio = join(repo, 'apps', 'studio')
  const page = join(studio, 'dist', 'index.html')
  const built = existsSync(page) ? statSync(page).mtimeMs : 0
  if (built > Math.max(newestSource(join(studio, 'src')), newestSource(join(studio, 'public')))) return
  try {
    execFileSync(join(studio, 'node_modules', '.bin', 'vite'), ['build', '--logLevel', 'warn'], {
      cwd: studio,
      stdio: 'inherit',
      timeout: 240_000,
    })
  } catch {
    console.warn('\n@proj/studio: `vite build` failed; the Studio tests will fail and show why\n')
  }
}

export default function setup(): void {
  buildStudio()
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
