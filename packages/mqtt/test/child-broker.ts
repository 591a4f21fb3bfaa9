/** The stand-alone broker fixture (test/fixtures/broker.mjs, on the built package) as a child process, for crash and restart tests. */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..')
const root = join(pkg, '..', '..')
/** The broker the child processes run; it imports this package's dist/. */
export const BROKER_FIXTURE = join(pkg, 'test/fixtures/broker.mjs')

export interface ChildBroker {
  child: ChildProcess
  port: number
  /** Resolves with the signal that ended the process (null: it exited by itself). */
  exited: Promise<NodeJS.Signals | null>
}

/** Builds this package and what it references (incremental), so the child runs the current sources. */
export function buildBroker(): void {
  try {
    execFileSync(join(root, 'node_modules/.bin/tsc'), ['-b', pkg], {
      cwd: root,
      stdio: 'pipe',
      timeout: 300_000,
    })
  } catch (err) {
    // A sibling package that does not compile right now must not hide these tests when a build exists.
    if (!existsSync(join(pkg, 'dist/index.js'))) throw err
    console.warn(`child broker: build failed, using the existing dist/: ${String(err).slice(0, 300)}`)
  }
}

/** Starts the broker on `data`; `args` are extra flags (`--stop-after step`). */
export async function startChild(data: string, args: string[] = []): Promise<ChildBroker> {
  const child = spawn(process.execPath, [BROKER_FIXTURE, '--data', data, '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const exited = once(child, 'exit').then(([, signal]) => signal as NodeJS.Signals | null)
  const lines = createInterface({ input: child.stdout! })
  let timer: NodeJS.Timeout | undefined
  try {
    const [line] = (await Promise.race([
      once(lines, 'line'),
      exited.then(() => {
        throw new Error('broker exited before listening')
      }),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('broker did not start')), 30_000)
      }),
    ])) as [string]
    return { child, port: JSON.parse(line).port, exited }
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  } finally {
    clearTimeout(timer)
  }
}

export async function killChild(b: ChildBroker): Promise<void> {
  if (b.child.exitCode === null && b.child.signalCode === null) b.child.kill('SIGKILL')
  await b.exited
}
