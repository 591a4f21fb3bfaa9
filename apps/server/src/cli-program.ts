import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Readable, Writable } from 'node:stream'
import type { ResourceRuntime } from '@proj/resource'
import { Command, Option } from 'commander'
import { type LoadedConfig, loadConfig, parseSetArguments, UNKNOWN_ENV_NOTE } from './config.js'
import { CONFIG_KEYS, flagName } from './config-schema.js'
import { openConfiguredRuntime } from './configured-runtime.js'
import { ConfigError } from './errors.js'
import type { ListenerInfo } from './listeners.js'
import { createLogger } from './logger.js'
import { findRoot, type RootOrigin } from './root.js'
import { startServer } from './server.js'
import type { Server } from './server-types.js'
import { VERSION } from './version.js'

export interface CliIo {
  stdout: Writable
  stderr: Writable
  stdin: Readable & { isTTY?: boolean }
  env: Record<string, string | undefined>
  /**
   * Called with a started server so the caller can wire signals (the bin does; tests may not), and
   * `reload`, which reads the configuration again the way `start` did and applies it (SIGHUP). It never
   * rejects: a configuration that cannot be applied is logged and the running one stays.
   */
  onStarted?: (server: Server, reload: () => Promise<void>) => void
}

/** Exit codes: 0 ok, 1 failure, 2 invalid configuration or usage. */
export const EXIT = { ok: 0, failure: 1, config: 2 } as const

/** A config key's flag name, then its short aliases. */
function flagNames(spec: (typeof CONFIG_KEYS)[number]): string[] {
  return [flagName(spec.key), ...(spec.aliases ?? [])]
}

/** One flag per config key (`--mqtt-network-port <value>`) plus short aliases (`--mqtt-port`). */
function keyFlags(): Option[] {
  const flags: Option[] = []
  for (const spec of CONFIG_KEYS) {
    const arg = spec.type.kind === 'boolean' ? '[value]' : '<value>'
    for (const name of flagNames(spec)) {
      const main = name === flagName(spec.key)
      flags.push(
        new Option(
          `--${name} ${arg}`,
          main ? `${spec.key}: ${spec.description}` : `alias of --${flagName(spec.key)}`,
        ),
      )
    }
  }
  return flags
}

/** The config key of each flag name (`mqtt-network-port` and its alias `mqtt-port`: `mqtt.network.port`). */
function keysByFlag(): Map<string, string> {
  const keys = new Map<string, string>()
  for (const spec of CONFIG_KEYS) for (const name of flagNames(spec)) keys.set(name, spec.key)
  return keys
}

const collect = (value: string, previous: string[]) => [...previous, value]

function addConfigOptions(command: Command, hideKeys: boolean, only?: string): Command {
  // `start` never reaches another command: their config flags (five commands' worth of Option objects,
  // about 1 MB of a running server's RSS) are made only when they can run or be shown
  if (only !== undefined && command.name() !== only) return command
  // fresh Option objects per command: hideHelp() on a shared one would hide it everywhere
  const flags = keyFlags()
  command
    .option(
      '--root <dir>',
      'root folder (config.yaml, data, applications); default PROJ_ROOT, else the nearest folder upwards with a config.yaml or data/, else .',
    )
    .option('--config <file>', 'config file (default <root>/config.yaml when present)')
    .option(
      '--set <key=value>',
      'set any config key, e.g. --set mqtt.maxKeepAlive=60 (repeatable)',
      collect,
      [],
    )
  for (const option of flags) {
    if (hideKeys) option.hideHelp()
    command.addOption(option)
  }
  return command
}

/** `--set` and the config-key flags a command was given, in the order the command declares them. */
function overridesFrom(
  command: Command,
  keys: Map<string, string>,
): { overrides: Record<string, string>; overrideSources: Record<string, string> } {
  const opts = command.opts()
  const overrides: Record<string, string> = parseSetArguments((opts.set as string[]) ?? [])
  const overrideSources: Record<string, string> = {}
  for (const key of Object.keys(overrides)) overrideSources[key] = `--set ${key}`
  for (const option of command.options) {
    const key = option.long === undefined ? undefined : keys.get(option.long.slice(2))
    if (key === undefined) continue
    const value = opts[option.attributeName()]
    if (value === undefined) continue
    overrides[key] = value === true ? 'true' : String(value)
    overrideSources[key] = option.long ?? key
  }
  return { overrides, overrideSources }
}

async function readPassword(io: CliIo, prompt: string): Promise<string> {
  // loaded here: only `user` commands read a password, and a running server keeps what it loads
  const { createInterface } = await import('node:readline')
  const rl = createInterface({
    input: io.stdin,
    output: io.stdin.isTTY ? io.stderr : undefined,
    terminal: !!io.stdin.isTTY,
  })
  if (io.stdin.isTTY) {
    io.stderr.write(prompt)
    // keep the typed password off the screen
    ;(rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = () => {}
  }
  try {
    for await (const line of rl) return line
    return ''
  } finally {
    rl.close()
    if (io.stdin.isTTY) io.stderr.write('\n')
  }
}

function formatListener(info: ListenerInfo): string {
  const what: Record<string, string> = {
    mqtt: 'MQTT',
    'mqtt-ws': 'MQTT over WebSocket',
    rest: 'REST',
    ws: 'WebSocket',
    sse: 'SSE',
  }
  const where = info.host === '::' || info.host === '0.0.0.0' ? 'all interfaces' : info.host
  return `listening: ${info.name.padEnd(5)} ${info.url}  (${info.services.map((s) => what[s] ?? s).join(', ')}; ${where})\n`
}

/**
 * The `proj-server` command line. Returns the exit code; `start` resolves once listening (the process
 * then lives on until a signal).
 *
 * @example
 * process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, ... })
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const program = new Command('proj-server')
  const keys = keysByFlag()
  let exitCode: number = EXIT.ok
  const only = argv[0] === 'start' && !argv.some((a) => a === '--help' || a === '-h') ? 'start' : undefined
  program
    .description('A real-time database with a built-in MQTT broker: MQTT, REST, WebSocket and SSE over LMDB.')
    .version(VERSION)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .showHelpAfterError()

  const load = async (command: Command): Promise<LoadedConfig & { origin: RootOrigin }> => {
    const opts = command.opts()
    const { root, origin } = findRoot(opts.root as string | undefined, io.env)
    const loaded = await loadConfig({
      root,
      ...(opts.config ? { configFile: opts.config as string } : {}),
      env: io.env,
      ...overridesFrom(command, keys),
    })
    return { ...loaded, origin }
  }

  addConfigOptions(
    program
      .command('start')
      .description('start the server (MQTT, MQTTS, HTTP, HTTPS listeners from the config)')
      .option(
        '--json',
        'also print one machine-readable line: {"listening":[{name,host,port,url,services}]}',
      ),
    false,
    only,
  ).action(async (opts, command: Command) => {
    const loaded = await load(command)
    const logger = createLogger(loaded.config.logging)
    for (const note of loaded.notes) logger.info(note)
    logger.info(
      {
        root: loaded.root,
        rootFrom: loaded.origin,
        config: loaded.file,
        storage: loaded.config.storage.path,
      },
      'starting',
    )
    const server = await startServer({
      config: loaded.config,
      root: loaded.root,
      logger,
      env: io.env,
      onAdminCreated: ({ username, password, generated }) => {
        if (generated) {
          io.stdout.write(
            `created admin user '${username}' with password ${password}\n` +
              '  (shown once; set ADMIN_USERNAME/ADMIN_PASSWORD before the first start to choose them)\n',
          )
        } else {
          io.stdout.write(`created admin user '${username}' with the password from ADMIN_PASSWORD\n`)
        }
      },
      onAdminPasswordIgnored: (warning) => io.stderr.write(`proj-server: ${warning}\n`),
    })
    // Signals first: whoever reads the listening line may send SIGTERM at once, and it must find them.
    const reload = async () => {
      try {
        await server.reload((await load(command)).config)
      } catch (err) {
        logger.error(
          { err },
          `reload failed, the running configuration stays: ${(err as Error).message ?? err}`,
        )
      }
    }
    io.onStarted?.(server, reload)
    for (const info of server.listeners) io.stdout.write(formatListener(info))
    if (opts.json) io.stdout.write(`${JSON.stringify({ listening: server.listeners })}\n`)
  })

  addConfigOptions(
    program
      .command('config')
      .description('print the effective configuration (file, PROJ_* env and flags merged) and exit')
      .option('--json', 'print JSON instead of YAML'),
    false,
    only,
  ).action(async (opts, command: Command) => {
    const { config, notes } = await load(command)
    // unknown PROJ_* variables, as `start` logs them; on stderr, so stdout stays parseable
    for (const note of notes) if (note.startsWith(UNKNOWN_ENV_NOTE)) io.stderr.write(`proj-server: ${note}\n`)
    io.stdout.write(
      opts.json ? `${JSON.stringify(config, null, 2)}\n` : (await import('yaml')).stringify(config),
    )
  })

  const user = program
    .command('user')
    .description('manage users (the server may be running: LMDB is multi-process)')
  /** Runs `fn` on the store of the root `start` would use, and says which data folder that is. */
  const withRuntime = async <T>(
    command: Command,
    fn: (runtime: ResourceRuntime) => Promise<T>,
  ): Promise<{ result: T; data: string }> => {
    const { config, root, origin } = await load(command)
    const data = config.storage.path
    if (!existsSync(join(data, 'data.mdb'))) {
      io.stderr.write(
        `proj-server: no store in ${data} yet: creating one (root ${root}, from the ${origin}). ` +
          'If a server runs elsewhere, run this from its root or pass --root <its root>.\n',
      )
    }
    const runtime = await openConfiguredRuntime(config, { root })
    try {
      return { result: await fn(runtime), data }
    } finally {
      await runtime.close()
    }
  }
  const passwordOf = async (opts: Record<string, unknown>) => {
    const password = (opts.password as string | undefined) ?? (await readPassword(io, 'password: '))
    if (!password)
      throw new ConfigError([{ key: 'password', source: '--password', reason: 'must not be empty' }])
    return password
  }

  addConfigOptions(
    user
      .command('add <username>')
      .description('add a user (password from --password, else prompted, else read from stdin)')
      .option(
        '--password <password>',
        'the password (visible in the process list; prefer the prompt or stdin)',
      )
      .option('--role <role>', 'role name (built in: admin, user, anonymous; or one from roles)')
      .option('--super-user', 'bypass every permission check'),
    true,
    only,
  ).action(async (username: string, opts, command: Command) => {
    const password = await passwordOf(opts)
    const { result: added, data } = await withRuntime(command, (runtime) =>
      runtime.users.add(username, password, {
        ...(opts.role ? { role: opts.role as string } : {}),
        ...(opts.superUser ? { superUser: true } : {}),
      }),
    )
    io.stdout.write(
      `added user '${added.username}' (role ${added.role}${added.superUser ? ', super user' : ''}) to ${data}\n`,
    )
  })

  addConfigOptions(
    user
      .command('passwd <username>')
      .description("change a user's password")
      .option('--password <password>', 'the new password (else prompted, else read from stdin)'),
    true,
    only,
  ).action(async (username: string, opts, command: Command) => {
    const password = await passwordOf(opts)
    const { data } = await withRuntime(command, (runtime) => runtime.users.setPassword(username, password))
    io.stdout.write(`changed the password of '${username}' in ${data}\n`)
  })

  addConfigOptions(
    user.command('list').description('list users').option('--json', 'print JSON'),
    true,
    only,
  ).action(async (opts, command: Command) => {
    const { result: users, data } = await withRuntime(command, async (runtime) => runtime.users.list())
    if (opts.json) io.stdout.write(`${JSON.stringify(users)}\n`)
    else {
      io.stdout.write(`# users of ${data}\n`)
      for (const u of users) io.stdout.write(`${u.username}\t${u.role}${u.superUser ? '\tsuper user' : ''}\n`)
    }
  })

  addConfigOptions(user.command('delete <username>').description('delete a user'), true, only).action(
    async (username: string, _opts, command: Command) => {
      const { result: deleted, data } = await withRuntime(command, (runtime) =>
        runtime.users.delete(username),
      )
      if (deleted) io.stdout.write(`deleted user '${username}' from ${data}\n`)
      else {
        io.stderr.write(`no user '${username}'\n`)
        exitCode = EXIT.failure
      }
    },
  )

  try {
    await program.parseAsync(argv, { from: 'user' })
    return exitCode
  } catch (error) {
    const e = error as { code?: string; exitCode?: number; message?: string }
    if (e.code?.startsWith('commander.')) {
      // help and version are exits too, with code 0
      return e.exitCode === 0 ? EXIT.ok : EXIT.config
    }
    if (error instanceof ConfigError) {
      io.stderr.write(`proj-server: ${error.message}\n`)
      return EXIT.config
    }
    io.stderr.write(`proj-server: ${(error as Error).message ?? error}\n`)
    return EXIT.failure
  }
}
