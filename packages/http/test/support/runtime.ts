import { openRuntime, type Runtime, type RuntimeOptions } from '@proj/resource'
import { type OpenedFixture, openFixtureRuntime } from '@proj/test-utils'

export type TestRuntime = OpenedFixture<Runtime>

/**
 * The real resource runtime on a fresh LMDB folder with the fixture application (a Dog table and an
 * attribute-less Anything table), a super user `ann` / `secret` and a user `bob` / `builder` whose role
 * may only read Dog. Anonymous access is off unless options say so.
 */
export function openTestRuntime(options: RuntimeOptions = {}): Promise<TestRuntime> {
  return openFixtureRuntime(openRuntime, options)
}
