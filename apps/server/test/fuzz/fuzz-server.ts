/**
 * The server the fuzzer attacks: the built CLI as a child process (a crash is a process exit; its RSS
 * is measurable), an application with a table the fuzzing role may write (`Fuzz`) and one it may only
 * read (`Guard`), plain topics it may write (`fz/#`) and some it may not (`keep/#`).
 */

import { readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempDir } from '@proj/test-utils'
import { afterAll, beforeAll, expect } from 'vitest'
import { basic, connectMqtt } from '../helpers/clients.js'
import { type ServerProcess, startServerProcess } from '../helpers/server-process.js'

export const ADMIN = { username: 'admin', password: 'admin-secret' }
export const FUZZER = { username: 'fuzzer', password: 'fuzzer-pw' }
/** Declared lengths beyond this must close the connection at once (0x95), never be waited for. */
export const MAX_PACKET_SIZE = 256 * 1024

const CONFIG = `
anonymous: { enabled: true, role: fuzzer }
roles:
  fuzzer:
    tables: { Fuzz: { read: true, insert: true, update: true, delete: true, publish: true }, Guard: { read: true } }
    topics:
      - { filter: "fz/#", publish: true, subscribe: true }
      - { filter: "#", subscribe: true }
auth:
  backoff: { maxFailuresPerUser: 0, maxFailuresPerAddress: 0 }
mqtt:
  maxPacketSize: ${MAX_PACKET_SIZE}
logging: { level: error }
`

/** The guarded state the fuzzer can read but must never change. */
export const GUARD_RECORDS = { '1': { id: '1', name: 'one' }, '2': { id: '2', name: 'two' } }
export const GUARD_TOPICS = { 'keep/a': 'alpha', 'keep/b': 'beta' }

export interface FuzzServer {
  process: ServerProcess
  mqttPort: number
  http: string
  /** Resident set size of the server process, in kB (from /proc). */
  rssKb(): number
  /** The Guard table over REST and the retained keep/# messages over MQTT, as one comparable string. */
  guardSnapshot(): Promise<string>
  stop(): Promise<number | null>
}

export async function startFuzzServer(): Promise<FuzzServer> {
  const root = await tempDir('proj-fuzz-')
  const app = join(root.path, 'applications', 'fuzz')
  await mkdir(app, { recursive: true })
  await writeFile(
    join(app, 'schema.graphql'),
    'type Fuzz @table @export { id: ID @id n: Int s: String }\ntype Guard @table @export { id: ID @id name: String }\n',
  )
  await writeFile(join(root.path, 'config.yaml'), CONFIG)
  const proc = await startServerProcess(root.path, {
    env: { ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password, PROJ_LOGGING_LEVEL: 'error' },
    ...(process.env.FUZZ_PROF ? { nodeArgs: ['--cpu-prof', '--cpu-prof-dir=/tmp/w3fuzz-prof'] } : {}),
  })
  const http = proc.listeners.http!.url
  const auth = { Authorization: basic(ADMIN.username, ADMIN.password), 'Content-Type': 'application/json' }
  const ok = async (res: Promise<Response>) => {
    const r = await res
    if (!r.ok) throw new Error(`fuzz server set-up: ${r.status} ${await r.text()}`)
  }
  await ok(
    fetch(`${http}/_admin/users`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ ...FUZZER, role: 'fuzzer' }),
    }),
  )
  for (const [id, record] of Object.entries(GUARD_RECORDS)) {
    await ok(fetch(`${http}/Guard/${id}`, { method: 'PUT', headers: auth, body: JSON.stringify(record) }))
  }
  const admin = await connectMqtt(proc.listeners.mqtt!.url, { ...ADMIN, clientId: 'fuzz-setup' })
  for (const [topic, value] of Object.entries(GUARD_TOPICS)) {
    await admin.publishAsync(topic, value, { qos: 1, retain: true })
  }
  await admin.endAsync()

  const guardSnapshot = async (): Promise<string> => {
    const res = await fetch(`${http}/Guard/`, { headers: auth })
    const records = await res.json()
    const client = await connectMqtt(proc.listeners.mqtt!.url, { ...ADMIN, clientId: 'fuzz-snapshot' })
    const retained: string[] = []
    const done = new Promise<void>((resolve) =>
      client.on('message', (topic, payload) => {
        if (topic === 'keep/~end') resolve()
        else retained.push(`${topic}=${payload.toString('hex')}`)
      }),
    )
    await client.subscribeAsync('keep/#', { qos: 1 })
    // a message published after the subscription arrives after its retained ones: the end marker
    await client.publishAsync('keep/~end', 'end', { qos: 1 })
    await done
    await client.endAsync()
    return JSON.stringify({ status: res.status, records, retained: retained.sort() })
  }

  return {
    process: proc,
    mqttPort: proc.listeners.mqtt!.port,
    http,
    rssKb() {
      try {
        const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8')
        return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
      } catch {
        return 0 // the process is gone: the exit is reported on its own
      }
    },
    guardSnapshot,
    async stop() {
      const code = await proc.stop()
      await root.remove()
      return code
    },
  }
}

export interface FuzzedServer {
  /** The server of the suite (started before its tests). */
  readonly server: FuzzServer
  /** Its guard snapshot at the start: nothing the fuzzer sends may change it. */
  readonly before: string
}

/** The suite's server: started before its tests with its guard snapshot, stopped after them (exit code 0). */
export function useFuzzServer(): FuzzedServer {
  let server: FuzzServer | undefined
  let before: string | undefined
  beforeAll(async () => {
    server = await startFuzzServer()
    before = await server.guardSnapshot()
  })
  afterAll(async () => {
    const code = await server?.stop()
    expect(code, server?.process.output()).toBe(0)
  })
  return {
    get server() {
      if (server === undefined) throw new Error('the fuzz server is not started yet')
      return server
    },
    get before() {
      if (before === undefined) throw new Error('the fuzz server is not started yet')
      return before
    },
  }
}
