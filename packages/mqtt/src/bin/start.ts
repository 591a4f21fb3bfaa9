#!/usr/bin/env node
/**
 * A minimal stand-alone broker for tests and benchmarks (apps/server is the real server):
 * `node dist/bin/start.js --data <dir> [--port 0] [--host 127.0.0.1] [--no-sync] [--stop-after <step>[:<n>]]`.
 * Opens a runtime with anonymous access on <dir>, listens on TCP, prints `{"port":N}` on stdout.
 * SIGTERM/SIGINT close the broker (sessions and wills persisted) and the runtime.
 * `--stop-after` (crash-point tests) kills the process with SIGKILL right after the n-th (default first)
 * occurrence of a named QoS flow step (`FLOW_STEPS` in src/flow-steps.ts).
 */
import * as net from 'node:net'
import { parseArgs } from 'node:util'
import { openRuntime } from '@proj/resource'
import { createBroker } from '../broker.js'
import { type FlowStepHook, isFlowStep } from '../flow-steps.js'

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: './data' },
    port: { type: 'string', default: '1883' },
    host: { type: 'string', default: '127.0.0.1' },
    'no-sync': { type: 'boolean', default: false },
    nodelay: { type: 'boolean', default: false },
    'stop-after': { type: 'string' },
  },
})

/** `step[:n]`: SIGKILL this process right after the n-th time the broker reports `step`. */
function stopAfter(spec: string | undefined): FlowStepHook | undefined {
  if (spec === undefined) return undefined
  const [step = '', nth = '1'] = spec.split(':')
  if (!isFlowStep(step)) throw new Error(`--stop-after: unknown step ${step}`)
  let left = Number(nth)
  return (reached) => {
    if (reached === step && --left === 0) process.kill(process.pid, 'SIGKILL')
  }
}
const onFlowStep = stopAfter(values['stop-after'])

const runtime = await openRuntime({ path: values.data, allowAnonymous: true, noSync: values['no-sync'] })
const broker = createBroker(onFlowStep === undefined ? { runtime } : { runtime, onFlowStep })
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
