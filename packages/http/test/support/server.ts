import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createHttpHandler, type HttpHandler, type HttpOptions } from '../../src/index.js'

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
