#!/usr/bin/env node
/**
 * A minimal stand-alone broker for tests and benchmarks (apps/server is the real server):
 * `node dist/bin/start.js --data <dir> [--port 0] [--host 127.0.0.1] [--no-sync]`.
 * Opens a runtime with anonymous access on <dir>, listens on TCP, prints `{"port":N}` on stdout.
 * SIGTERM/SIGINT close the broker (sessions and wills persisted) and the runtime.
 */
import * as net from 'node:net'
import { parseArgs } from 'node:util'
import { openRuntime } from '@proj/resource'
import { createBroker } from '../broker.js'

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: './data' },
    port: { type: 'string', default: '1883' },
    host: { type: 'string', default: '127.0.0.1' },
    'no-sync': { type: 'boolean', default: false },
    nodelay: { type: 'boolean', default: false },
  },
})

const runtime = await openRuntime({ path: values.data, allowAnonymous: true, noSync: values['no-sync'] })
const broker = createBroker({ runtime })
const server = net.createServer({ noDelay: values.nodelay }, (socket) => {
  broker.handle(socket, {
    transport: 'tcp',
    remoteAddress: socket.remoteAddress,
    remotePort: socket.remotePort,
  })
})
server.listen(Number(values.port), values.host, () => {
  const address = server.address() as net.AddressInfo
  process.stdout.write(`${JSON.stringify({ port: address.port, host: values.host })}\n`)
})

let stopping = false
async function stop() {
  if (stopping) return
  stopping = true
  server.close()
  await broker.close()
  await runtime.close()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
