import { type ChildProcess, spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli.js')

export interface ListenerLine {
  name: 'mqtt' | 'mqtts' | 'http' | 'https'
  host: string
  port: number
  url: string
  services: string[]
}

export interface ServerProcess {
  child: ChildProcess
  pid: number
  listeners: Partial<Record<ListenerLine['name'], ListenerLine>>
  /** Everything written to stdout and stderr so far. */
  output(): string
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (null when killed). */
  stop(graceMs?: number): Promise<number | null>
  exited: Promise<number | null>
}

/**
 * Settings every test process gets unless a test overrides them: the RFC 7677 minimum of SCRAM
 * iterations (the default, 600 000, costs about a second per `user add` on a busy machine) and the
 * smallest scrypt cost (1024; the default 16384 costs ~50 ms per password check).
 */
export const TEST_ENV: Record<string, string> = {
  PROJ_AUTH_SCRAMITERATIONS: '4096',
  PROJ_AUTH_SCRYPTCOST: '1024',
}

/** Runs the built CLI with `args` and collects its output; resolves when it exits. */
export function runCli(
  args: string[],
  options: { env?: Record<string, string>; input?: string; timeoutMs?: number; cwd?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      ...(options.cwd ? { cwd: options.cwd } : {}),
      env: { ...process.env, ...TEST_ENV, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`proj-server ${args.join(' ')} timed out\n${stdout}\n${stderr}`))
    }, options.timeoutMs ?? 15_000)
    child.on('error', reject)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
    child.stdin.end(options.input ?? '')
  })
}

/**
 * `proj-server user add` on `root` (the CLI writes the store directly, before a server starts); throws with
 * its stderr when it fails.
 */
export async function addUser(
  root: string,
  username: string,
  password: string,
  ...flags: string[]
): Promise<void> {
  const added = await runCli(['user', 'add', username, '--root', root, '--password', password, ...flags])
  if (added.code !== 0) throw new Error(`user add ${username} exited with ${added.code}: ${added.stderr}`)
}

/**
 * Starts `proj-server start --root <root> --json` with every listener on 127.0.0.1 port 0 and resolves
 * once the machine-readable `listening` line arrives (or rejects with the output if it exits first).
 */
export function startServerProcess(
  root: string,
  options: { args?: string[]; env?: Record<string, string>; timeoutMs?: number; nodeArgs?: string[] } = {},
): Promise<ServerProcess> {
  const args = [
    ...(options.nodeArgs ?? []),
    CLI,
    'start',
    '--root',
    root,
    '--json',
    '--http-port',
    '0',
    '--mqtt-port',
    '0',
    '--set',
    'http.host=127.0.0.1',
    '--set',
    'mqtt.network.host=127.0.0.1',
    ...(options.args ?? []),
  ]
  const child = spawn(process.execPath, args, {
    env: {
      ...process.env,
      PROJ_LOGGING_LEVEL: 'warn',
      PROJ_LOGGING_FORMAT: 'json',
      ...TEST_ENV,
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`server did not start in time:\n${out}`))
    }, options.timeoutMs ?? 20_000)
    let buffer = ''
    const onData = (chunk: Buffer) => {
      out += chunk
      buffer += chunk
      let nl = buffer.indexOf('\n')
      while (nl >= 0) {
        const line = buffer.slice(0, nl)
        buffer = buffer.slice(nl + 1)
        nl = buffer.indexOf('\n')
        if (!line.startsWith('{"listening"')) continue
        clearTimeout(timer)
        const listeners: ServerProcess['listeners'] = {}
        for (const l of JSON.parse(line).listening as ListenerLine[]) listeners[l.name] = l
        resolve({
          child,
          pid: child.pid!,
          listeners,
          output: () => out,
          exited,
          async stop(graceMs = 10_000) {
            if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
            child.kill('SIGTERM')
            const kill = setTimeout(() => child.kill('SIGKILL'), graceMs)
            const code = await exited
            clearTimeout(kill)
            return code
          },
        })
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', (chunk) => (out += chunk))
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`server exited with ${code} before listening:\n${out}`))
    })
  })
}
