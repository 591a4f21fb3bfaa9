// The HTTP handler and the broker wired in this process on a test runtime, for tests of the two
// transports together (MQTT over WebSocket on the HTTP port); apps/server is where they meet. The
// fixture (application, users, loopback server) is the one the @proj/http suites use.
import { createHttpHandler, type HttpHandler, type HttpOptions } from '@proj/http'
import { openRuntime, type Runtime, type RuntimeOptions } from '@proj/resource'
import {
  type LoopbackHttp,
  listenLoopbackHttp,
  type OpenedFixture,
  openFixtureRuntime,
} from '@proj/test-utils'

export type TestRuntime = OpenedFixture<Runtime>

/** The real resource runtime with the fixture application and users `ann` (super user) and `bob` (reads Dog). */
export function openTestRuntime(options: RuntimeOptions = {}): Promise<TestRuntime> {
  return openFixtureRuntime(openRuntime, options)
}

export interface TestServer extends LoopbackHttp {
  handler: HttpHandler
}

/** An http.Server on 127.0.0.1, port 0, with the handler attached. */
export async function startServer(options: HttpOptions): Promise<TestServer> {
  const handler = createHttpHandler(options)
  return { ...(await listenLoopbackHttp(handler)), handler }
}
