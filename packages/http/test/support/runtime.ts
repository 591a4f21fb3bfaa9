import { openRuntime, type Runtime, type RuntimeOptions } from '@proj/resource'
import { tempDir } from '@proj/test-utils'

/** The application every suite uses: a Dog table and an attribute-less Anything table. */
export const SCHEMA = `
type Dog @table @export {
  id: ID @primaryKey
  name: String
  breed: String @indexed
  age: Int
}

type Anything @table @export
`

export interface TestRuntime {
  runtime: Runtime
  close(): Promise<void>
}

/**
 * The real resource runtime on a fresh LMDB folder, with a super user `ann` / `secret` and a user
 * `bob` / `builder` whose role may only read Dog. Anonymous access is off unless options say so.
 */
export async function openTestRuntime(options: RuntimeOptions = {}): Promise<TestRuntime> {
  const dir = await tempDir('proj-http-')
  const runtime = await openRuntime({
    path: dir.path,
    schemas: [{ source: SCHEMA, file: 'schema.graphql' }],
    noSync: true,
    roles: [{ name: 'reader', tables: { Dog: { read: true } } }],
    auth: { scramIterations: 4096, scryptCost: 1024 },
    ...options,
  })
  await runtime.users.add('ann', 'secret', { superUser: true })
  await runtime.users.add('bob', 'builder', { role: 'reader' })
  return {
    runtime,
    async close() {
      await runtime.close()
      await dir.remove()
    },
  }
}
