import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempDir } from '@proj/test-utils'
import { describe, expect, it } from 'vitest'
import { specFor } from '../src/config-schema.js'
import { basic } from './helpers/clients.js'
import { runCli, startServerProcess } from './helpers/server-process.js'

/** What a new user meets in the first hour, tried with the built CLI as they would. */
describe('the first hour', () => {
  it('warns when ADMIN_PASSWORD no longer matches the admin, naming the command that changes it', async () => {
    await using root = await tempDir('proj-server-first-admin-')
    // the README's first command: a generated password
    const first = await startServerProcess(root.path)
    expect(first.output()).toMatch(/created admin user 'admin' with password \S+/)
    const firstCode = await first.stop()
    expect(firstCode, `${first.output()} signal=${first.child.signalCode}`).toBe(0)

    // the tour's command afterwards: ignored, and said so
    const second = await startServerProcess(root.path, { env: { ADMIN_PASSWORD: 'secret' } })
    const http = second.listeners.http!.url
    expect(second.output()).toContain(
      "ADMIN_PASSWORD is ignored: user 'admin' already exists with another password",
    )
    expect(second.output()).toContain('proj-server user passwd admin')
    expect(
      (await fetch(`${http}/Dog/`, { headers: { authorization: basic('admin', 'secret') } })).status,
    ).toBe(401)
    // the fix it names works while the server runs
    const passwd = await runCli(['user', 'passwd', 'admin', '--root', root.path, '--password', 'secret'])
    expect(passwd.code, passwd.stderr).toBe(0)
    expect(
      (await fetch(`${http}/Dog/`, { headers: { authorization: basic('admin', 'secret') } })).status,
    ).toBe(200)
    expect(await second.stop()).toBe(0)

    // once they agree, no warning
    const third = await startServerProcess(root.path, { env: { ADMIN_PASSWORD: 'secret' } })
    expect(third.output()).not.toContain('ignored')
    expect(await third.stop()).toBe(0)
  })

  it('finds the root from a sub-folder for user commands, and says which data folder changed', async () => {
    await using root = await tempDir('proj-server-first-root-')
    const added = await runCli(['user', 'add', 'ann', '--password', 'ann-pw'], { cwd: root.path })
    expect(added.code, added.stderr).toBe(0)
    const data = join(root.path, 'data')
    expect(added.stdout).toBe(`added user 'ann' (role user) to ${data}\n`)
    expect(added.stderr).toContain(`no store in ${data} yet: creating one`)

    // from a sub-folder (say, apps/server): the same store, not a new ./data there
    const sub = join(root.path, 'apps', 'server')
    await mkdir(sub, { recursive: true })
    const again = await runCli(['user', 'add', 'bob', '--password', 'bob-pw'], { cwd: sub })
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toBe(`added user 'bob' (role user) to ${data}\n`)
    expect(again.stderr).toBe('')
    const listed = await runCli(['user', 'list'], { cwd: sub })
    expect(listed.stdout).toBe(`# users of ${data}\nann\tuser\nbob\tuser\n`)
    await expect(readFile(join(sub, 'data', 'data.mdb'))).rejects.toThrow(/ENOENT/)

    // PROJ_ROOT names it from anywhere
    await using elsewhere = await tempDir('proj-server-first-elsewhere-')
    const viaEnv = await runCli(['user', 'delete', 'bob'], {
      cwd: elsewhere.path,
      env: { PROJ_ROOT: root.path },
    })
    expect(viaEnv.stdout).toBe(`deleted user 'bob' from ${data}\n`)
  })
})

describe('the root README', () => {
  const readme = () => readFile(new URL('../../../README.md', import.meta.url), 'utf8')

  it('shows a browser page how to log in and pass ?access_token= to EventSource and WebSocket', async () => {
    const text = await readme()
    expect(text).toMatch(/fetch\('\/login'/)
    expect(text).toMatch(/new EventSource\(`[^`]*\?access_token=/)
    expect(text).toMatch(/new WebSocket\(`[^`]*\?access_token=/)
    expect(text).toContain('apps/studio') // the Studio is the worked example
  })

  it('tells a reader of the tour what to do when the admin already exists', async () => {
    const text = await readme()
    const tour = text.slice(text.indexOf('## Five-minute tour'))
    expect(tour).toContain('ADMIN_PASSWORD=secret pnpm start')
    expect(tour).toContain('user passwd admin')
  })

  it('says in its Security section how long a successful Basic verification is reused', async () => {
    const text = await readme()
    const security = text.slice(
      text.indexOf('## Security'),
      text.indexOf('\n## ', text.indexOf('## Security') + 1),
    )
    const ttl = specFor('auth.cacheTtl')?.default
    expect(ttl).toBe(60_000)
    expect(security).toContain(`\`auth.cacheTtl\` (${Number(ttl) / 1000} s`)
  })

  it('asks for the Node version that package.json engines names', async () => {
    const text = await readme()
    const engines = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8'))
      .engines.node as string
    const minimum = /^>=(\d+\.\d+)/.exec(engines)?.[1]
    expect(minimum).toBeDefined()
    expect(text).toContain(`Node ${minimum}`)
  })
})
