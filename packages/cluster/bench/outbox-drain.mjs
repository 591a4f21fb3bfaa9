// How fast a node sends its `ack: local` outbox to the stream. Fills a store's outbox with N committed
// writes while the sender is not running, then starts the node and times until the outbox is empty
// (the rate) and the process CPU it took (µs per entry; the figure that holds on a loaded machine).
// One nats-server (JetStream, file storage), one node in this process.
//
//   node packages/cluster/bench/outbox-drain.mjs [worktree root] [entries]
//
// The worktree root (default: this one) is where the built @proj/cluster and @proj/storage are loaded
// from, so a build of another commit can be measured side by side with the same script.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = fileURLToPath(new URL('../../..', import.meta.url))
const root = resolve(process.argv[2] ?? here)
const entries = Number(process.argv[3] ?? 20_000)
const { joinCluster } = await import(join(root, 'packages/cluster/dist/index.js'))
const { openStore } = await import(join(root, 'packages/storage/dist/index.js'))

function freePort() {
  return new Promise((done, fail) => {
    const server = createServer()
    server.on('error', fail)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => done(port))
    })
  })
}

async function until(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

const dir = mkdtempSync(join(tmpdir(), 'outbox-drain-'))
const port = await freePort()
const nats = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', join(dir, 'nats')], {
  stdio: 'ignore',
})
const quiet = { info() {}, warn() {}, error() {}, debug() {} }
await until(
  () =>
    new Promise((done) => {
      const socket = createConnection(port, '127.0.0.1')
      socket.once('connect', () => done(socket.end() && true))
      socket.once('error', () => done(false))
    }),
  10_000,
  'nats-server to listen',
)
let node
let store
try {
  node = await joinCluster({
    servers: [`nats://127.0.0.1:${port}`],
    nodeName: 'bench',
    replicas: 1,
    ack: 'local',
    outboxLimit: 0,
    log: quiet,
    joinTimeoutMs: 30_000,
  })
  store = await openStore({ path: join(dir, 'store'), nodeId: node.nodeId, replicator: node.replicator })
  const dogs = store.table('Dog')
  // committed here with their outbox entries; nothing is sent before node.start()
  for (let i = 0; i < entries; i += 1000) {
    const batch = []
    for (let j = i; j < Math.min(entries, i + 1000); j++)
      batch.push(dogs.put(`dog-${j}`, { name: `Rex ${j}`, n: j }))
    await Promise.all(batch)
  }
  if (store.outbox.size !== entries) throw new Error(`outbox holds ${store.outbox.size}, not ${entries}`)
  const cpu = process.cpuUsage()
  const started = process.hrtime.bigint()
  node.start(store)
  await until(() => store.outbox.size === 0, 120_000, 'the outbox to drain')
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  const used = process.cpuUsage(cpu)
  const result = {
    root,
    entries,
    ms: Math.round(ms),
    perSecond: Math.round((entries / ms) * 1000),
    cpuUsPerEntry: Math.round(((used.user + used.system) / entries) * 10) / 10,
  }
  console.log(JSON.stringify(result))
} finally {
  await node?.close()
  await store?.close()
  nats.kill('SIGTERM')
  await new Promise((r) => nats.once('exit', r))
  rmSync(dir, { recursive: true, force: true })
}
