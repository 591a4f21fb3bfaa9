// The HTTP handler and the broker wired in this process on a test runtime, for tests of the two
// transports together (MQTT over WebSocket on the HTTP port); apps/server is where they meet.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createHttpHandler, type HttpHandler, type HttpOptions } from '@proj/http'
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
    auth: { scramIterations: 4096 },
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

export interface TestServer {
  server: Server
  handler: HttpHandler
  /** `http://127.0.0.1:port` */
  url: string
  /** `ws://127.0.0.1:port` */
  wsUrl: string
  close(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

/** An http.Server on 127.0.0.1, port 0, with the handler attached. */
export async function startServer(options: HttpOptions): Promise<TestServer> {
  const server = createServer()
  const handler = createHttpHandler(options)
  handler.attach(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const close = async () => {
    await handler.close()
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  return {
    server,
    handler,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    close,
    [Symbol.asyncDispose]: close,
  }
}
