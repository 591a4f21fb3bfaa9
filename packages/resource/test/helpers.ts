import { fileURLToPath } from 'node:url'
import { tempDir } from '@proj/test-utils'
import { openRuntime, type ResourceEvent, type ResourceRuntime, type RuntimeOptions } from '../src/index.js'

export const APP = fileURLToPath(new URL('./fixtures/app', import.meta.url))

export const admin = { user: { username: 'admin', role: 'admin', superUser: true } }

/** A runtime on a fresh LMDB folder, removed again by `await using`. */
export async function runtimeFixture(options: RuntimeOptions = {}): Promise<{
  runtime: ResourceRuntime
  path: string
  reopen(more?: RuntimeOptions): Promise<ResourceRuntime>
  [Symbol.asyncDispose](): Promise<void>
}> {
  const dir = await tempDir('proj-resource-')
  const base: RuntimeOptions = { path: dir.path, applications: [APP], noSync: true, ...options }
  let runtime = await openRuntime(base)
  return {
    get runtime() {
      return runtime
    },
    path: dir.path,
    async reopen(more = {}) {
      await runtime.close()
      runtime = await openRuntime({ ...base, ...more })
      return runtime
    },
    async [Symbol.asyncDispose]() {
      await runtime.close()
      await dir.remove()
    },
  }
}

export const bytes = (text: string) => new TextEncoder().encode(text)
export const text = (data: Uint8Array) => new TextDecoder().decode(data)

/** Collects events from a listener. */
export function collector() {
  const events: ResourceEvent[] = []
  const listener = (event: ResourceEvent) => {
    events.push(event)
  }
  return { events, listener }
}
