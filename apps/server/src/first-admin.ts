import { randomBytes } from 'node:crypto'
import type { ResourceRuntime } from '@proj/resource'

/**
 * Creates the first admin when no super user exists yet (a fresh store, or users added with the CLI before
 * the first start): ADMIN_USERNAME (default `admin`) with ADMIN_PASSWORD, or a generated password.
 */
export async function ensureAdmin(
  runtime: ResourceRuntime,
  env: Record<string, string | undefined>,
): Promise<{ username: string; password: string; generated: boolean } | undefined> {
  const users = runtime.users.list()
  const username = env.ADMIN_USERNAME || 'admin'
  if (users.some((u) => u.superUser || u.username === username)) return undefined
  const generated = !env.ADMIN_PASSWORD
  const password = env.ADMIN_PASSWORD || randomBytes(15).toString('base64url')
  try {
    await runtime.users.add(username, password, { superUser: true })
  } catch (error) {
    // a cluster: another node's first start created it meanwhile (the add is create-if-absent)
    if ((error as { code?: unknown })?.code === 'CONFLICT') return undefined
    throw error
  }
  return { username, password, generated }
}

/**
 * ADMIN_USERNAME / ADMIN_PASSWORD only act when the first admin is created. Set on a later start, they
 * would be silently ignored and every request with that password answered 401: this says so instead,
 * with the command that changes the password. Undefined when they agree with the store (or are unset).
 */
export async function ignoredAdminPassword(
  runtime: ResourceRuntime,
  env: Record<string, string | undefined>,
): Promise<string | undefined> {
  if (!env.ADMIN_PASSWORD) return undefined
  const username = env.ADMIN_USERNAME || 'admin'
  const users = runtime.users.list()
  if (users.some((u) => u.username === username)) {
    if (await runtime.users.checkPassword(username, env.ADMIN_PASSWORD)) return undefined
    return (
      `ADMIN_PASSWORD is ignored: user '${username}' already exists with another password ` +
      '(ADMIN_PASSWORD only sets the password when the first start creates the admin). ' +
      `To change it: proj-server user passwd ${username} (from the repository: node apps/server/dist/cli.js user passwd ${username})`
    )
  }
  const supers = users.filter((u) => u.superUser).map((u) => u.username)
  return (
    `ADMIN_USERNAME/ADMIN_PASSWORD are ignored: there is no user '${username}', and the store has its super user(s) already (${supers.join(', ')}). ` +
    `To add it: proj-server user add ${username} --super-user`
  )
}
