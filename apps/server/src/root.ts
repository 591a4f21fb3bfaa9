import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'

/** How the root was chosen, for the line that names it. */
export type RootOrigin = '--root' | 'PROJ_ROOT' | 'found' | 'current directory'

/**
 * The server's root folder, found the same way by every command (`start`, `config`, `user ...`):
 * `--root`, else `PROJ_ROOT`, else the nearest folder from the current directory upwards that holds a
 * `config.yaml` or a store (`data/data.mdb`), else the current directory. So `user add` run from a
 * sub-folder changes the users of the server above it instead of creating a new `./data` there.
 *
 * @example
 * const { root } = findRoot(undefined, process.env) // e.g. the repository root after `pnpm start`
 */
export function findRoot(
  explicit: string | undefined,
  env: Record<string, string | undefined>,
  cwd: string = process.cwd(),
): { root: string; origin: RootOrigin } {
  if (explicit !== undefined) return { root: resolve(cwd, explicit), origin: '--root' }
  if (env.PROJ_ROOT) return { root: resolve(cwd, env.PROJ_ROOT), origin: 'PROJ_ROOT' }
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'config.yaml')) || existsSync(join(dir, 'data', 'data.mdb')))
      return { root: dir, origin: 'found' }
    if (dirname(dir) === dir) break
  }
  return { root: resolve(cwd), origin: 'current directory' }
}
