import { fileURLToPath } from 'node:url'
import { tempDir } from '@proj/test-utils'
import { expect } from 'vitest'
import {
  openRuntime,
  ResourceError,
  type ResourceEvent,
  type ResourceRuntime,
  type RuntimeOptions,
} from '../src/index.js'

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
  // The cheapest password hashing the options allow: the RFC 7677 minimum of SCRAM iterations (the default,
  // 600 000, adds a second to every users.add on a busy machine) and scrypt cost 1024 (16 times cheaper than
  // the default); a test that passes `auth` keeps these unless it names them.
  const base: RuntimeOptions = {
    path: dir.path,
    applications: [APP],
    noSync: true,
    ...options,
    auth: { scramIterations: 4096, scryptCost: 1024, ...options.auth },
  }
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

/**
 * The `code` of the ResourceError that `promise` rejects with, or 'OK' when it resolves
 * (so `expect(await code(p)).toBe('FORBIDDEN')` fails both on success and on another error).
 */
export async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (error) {
    expect(error).toBeInstanceOf(ResourceError)
    return (error as ResourceError).code
  }
  return 'OK'
}
