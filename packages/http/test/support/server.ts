import { type LoopbackHttp, listenLoopbackHttp } from '@proj/test-utils'
import { createHttpHandler, type HttpHandler, type HttpOptions } from '../../src/index.js'

export interface TestServer extends LoopbackHttp {
  handler: HttpHandler
}

/** An http.Server on 127.0.0.1, port 0, with the handler attached. */
export async function startServer(options: HttpOptions): Promise<TestServer> {
  const handler = createHttpHandler(options)
  return { ...(await listenLoopbackHttp(handler)), handler }
}
