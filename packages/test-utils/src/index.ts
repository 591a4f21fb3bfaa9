export { tempDir } from './temp-dir.js'

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

export type { AttachableHandler, FixtureRuntime, LoopbackHttp, OpenedFixture } from './http-fixture.js'
export { FIXTURE_SCHEMA, listenLoopbackHttp, openFixtureRuntime } from './http-fixture.js'
export type { NatsCluster, NatsServer } from './nats.js'
export { freePorts, natsServerPath, natsSkipNote, natsSkipReason, startNatsCluster } from './nats.js'
