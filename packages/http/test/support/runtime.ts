import type { Runtime } from '@proj/resource'
import { fakeRuntime } from './fake-runtime.js'

export interface TestRuntime {
  runtime: Runtime
  close(): Promise<void>
}

/** A runtime with a `Dog` table (id: ID, name, breed, age) and a user `ann` / `secret` (super user). */
export async function openTestRuntime(): Promise<TestRuntime> {
  const runtime = fakeRuntime() as Runtime
  return { runtime, close: async () => {} }
}
