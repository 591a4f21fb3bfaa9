import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A fresh temporary directory, removed by `await using` or by calling the returned `remove()`. */
export async function tempDir(
  prefix = 'proj-test-',
): Promise<{ path: string; remove(): Promise<void>; [Symbol.asyncDispose](): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix))
  const remove = () => rm(path, { recursive: true, force: true })
  return { path, remove, [Symbol.asyncDispose]: remove }
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes; rejects with `message` on timeout. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  { timeoutMs = 5000, intervalMs = 10, message = 'condition' } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${message}`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

/** Resolves with the next emission of `event` on an EventEmitter-like object, or rejects after `timeoutMs`. */
export function once<T = unknown>(
  emitter: { once(event: string, fn: (...args: any[]) => void): unknown },
  event: string,
  timeoutMs = 5000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for '${event}'`)), timeoutMs)
    emitter.once(event, (value: T) => {
      clearTimeout(timer)
      resolve(value)
    })
  })
}

export type { NatsCluster, NatsServer } from './nats.js'
export { freePorts, natsServerPath, natsSkipNote, natsSkipReason, startNatsCluster } from './nats.js'
