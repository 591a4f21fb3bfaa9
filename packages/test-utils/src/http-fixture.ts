/**
 * What the HTTP suites (@proj/http) and the server's in-process WebSocket suites share: the fixture
 * application, its users, and an HTTP server on loopback. The runtime is opened by the caller's
 * `openRuntime` (this package imports none of ours: every package's tests use it).
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tempDir } from './temp-dir.js'

/** The application every suite uses: a Dog table and an attribute-less Anything table. */
export const FIXTURE_SCHEMA = `
type Dog @table @export {
  id: ID @primaryKey
  name: String
  breed: String @indexed
  age: Int
}

type Anything @table @export
`

/** What the fixture needs of a resource runtime. */
export interface FixtureRuntime {
  readonly users: {
    add(
      username: string,
      password: string,
      options?: { superUser?: boolean; role?: string },
    ): Promise<unknown>
  }
  close(): Promise<void>
}

export interface OpenedFixture<R> {
  runtime: R
  close(): Promise<void>
}

/**
 * A runtime made by `open` on a fresh LMDB folder with the fixture application, a super user `ann` /
 * `secret` and a user `bob` / `builder` whose role may only read Dog. Anonymous access is off unless
 * `options` say so.
 */
export async function openFixtureRuntime<R extends FixtureRuntime, O extends object>(
  open: (options: O) => Promise<R>,
  options: Partial<O> = {},
): Promise<OpenedFixture<R>> {
  const dir = await tempDir('proj-http-')
  const runtime = await open({
    path: dir.path,
    schemas: [{ source: FIXTURE_SCHEMA, file: 'schema.graphql' }],
    noSync: true,
    roles: [{ name: 'reader', tables: { Dog: { read: true } } }],
    auth: { scramIterations: 4096, scryptCost: 1024 },
    ...options,
  } as unknown as O)
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

export interface LoopbackHttp {
  server: Server
  /** `http://127.0.0.1:port` */
  url: string
  /** `ws://127.0.0.1:port` */
  wsUrl: string
  close(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

/** A request handler that attaches to a server and closes before it (the @proj/http handler). */
export interface AttachableHandler {
  attach(server: Server): void
  close(): Promise<void>
}

/**
 * An http.Server on 127.0.0.1, port 0, with `handler` attached before it listens; `close()` closes the
 * handler first, then cuts the connections left and closes the server.
 */
export async function listenLoopbackHttp(handler: AttachableHandler): Promise<LoopbackHttp> {
  const server = createServer()
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
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    close,
    [Symbol.asyncDispose]: close,
  }
}
