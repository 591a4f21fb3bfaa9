import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempDir } from '@proj/test-utils'
import mqtt, { type IClientOptions, type IConnackPacket, type MqttClient } from 'mqtt'
import WebSocket from 'ws'
import { basic } from './clients.js'
import { type ServerProcess, startServerProcess } from './server-process.js'

/**
 * One server process for the security suites: tables Dog and Secret; three users besides the admin: a
 * reader (reads Dog), a writer (writes Dog) and anonymous (reads Dog); nobody but the admin reaches Secret.
 * Topic rules: `public/#` for everyone to read (writer: also to publish), `devices/%u/#` and `clients/%c/#`.
 */
export const ADMIN = { username: 'admin', password: 'admin-secret' }
export const READER = { username: 'reader', password: 'reader-pw' }
export const WRITER = { username: 'writer', password: 'writer-pw' }
export const SECRET = 's3cr3t-value'

export type Who = 'admin' | 'reader' | 'writer' | 'anonymous'
export const USERS: readonly Exclude<Who, 'admin'>[] = ['reader', 'writer', 'anonymous']

const CREDENTIALS: Record<Exclude<Who, 'anonymous'>, { username: string; password: string }> = {
  admin: ADMIN,
  reader: READER,
  writer: WRITER,
}

const SCHEMA = `
type Dog @table @export { id: ID @primaryKey name: String }
type Secret @table @export { id: ID @primaryKey value: String }
`

const CONFIG = `
anonymous: { enabled: true, role: anonymous }
roles:
  anonymous:
    tables: { Dog: { read: true } }
    topics: [{ filter: "public/#", subscribe: true }]
  reader:
    tables: { Dog: { read: true } }
    topics:
      - { filter: "public/#", subscribe: true }
      - { filter: "devices/%u/#", publish: true, subscribe: true }
      - { filter: "clients/%c/#", publish: true, subscribe: true }
  writer:
    tables: { Dog: { read: true, insert: true, update: true, delete: true } }
    topics:
      - { filter: "public/#", publish: true, subscribe: true }
      - { filter: "devices/%u/#", publish: true, subscribe: true }
`

export interface Response {
  status: number
  text: string
  headers: Headers
}

export interface SecurityServer {
  server: ServerProcess
  /** The server's root folder (for the CLI's user commands). */
  root: string
  http: string
  ws: string
  mqtt: string
  /** Authorization header value of a user (none for anonymous). */
  auth(who: Who): Record<string, string>
  rest(
    who: Who | { token: string },
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<Response>
  /** An MQTT client over TCP or WebSocket; resolves with its CONNACK, rejects with the refusal. */
  connect(
    who: Who,
    door: 'tcp' | 'ws',
    options?: IClientOptions,
  ): Promise<{ client: MqttClient; connack: IConnackPacket; messages: { topic: string; payload: string }[] }>
  /** Status of a records WebSocket upgrade: 101 when it opened (then closed again), else the HTTP status. */
  upgrade(path: string, headers?: Record<string, string>, protocol?: string): Promise<number>
  /** Status of an event-stream request (the stream is aborted once the status is known). */
  sse(path: string, headers?: Record<string, string>): Promise<number>
  /** What the admin reads of every record and topic the suites must leave alone. */
  snapshot(): Promise<Record<string, { status: number; text: string }>>
  close(): Promise<void>
}

/** Everything `snapshot()` reads: a refused request must leave each of these as it was. */
const WATCHED = [
  '/Secret/',
  '/Secret/1',
  '/Secret/2',
  '/Dog/1',
  '/Dog/2',
  '/public/notice',
  '/devices/writer/x',
  '/devices/reader/x',
  '/clients/x/y',
  '/constructor/x',
]

export async function startSecurityServer(args: string[] = []): Promise<SecurityServer> {
  const root = await tempDir('proj-security-')
  await mkdir(join(root.path, 'applications', 'app'), { recursive: true })
  await writeFile(join(root.path, 'applications', 'app', 'schema.graphql'), SCHEMA)
  await writeFile(join(root.path, 'config.yaml'), CONFIG)
  const server = await startServerProcess(root.path, {
    env: { ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password },
    args,
  })
  const http = server.listeners.http!.url
  const clients = new Set<MqttClient>()
  const sockets = new Set<WebSocket>()
  const auth = (who: Who): Record<string, string> =>
    who === 'anonymous' ? {} : { authorization: basic(CREDENTIALS[who].username, CREDENTIALS[who].password) }

  const rest: SecurityServer['rest'] = async (who, method, path, body, headers = {}) => {
    const authorization = typeof who === 'object' ? { authorization: `Bearer ${who.token}` } : auth(who)
    const res = await fetch(`${http}${path}`, {
      method,
      headers: {
        ...authorization,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    })
    return { status: res.status, text: await res.text(), headers: res.headers }
  }

  const s: SecurityServer = {
    server,
    root: root.path,
    http,
    ws: http.replace(/^http/, 'ws'),
    mqtt: server.listeners.mqtt!.url,
    auth,
    rest,
    connect(who, door, options = {}) {
      const url = door === 'tcp' ? s.mqtt : `${s.ws}/mqtt`
      const credentials = who === 'anonymous' ? {} : CREDENTIALS[who]
      return new Promise((resolve, reject) => {
        const client = mqtt.connect(url, {
          reconnectPeriod: 0,
          connectTimeout: 5000,
          protocolVersion: 5,
          ...credentials,
          ...options,
        })
        clients.add(client)
        // collected from the start: a session's queued messages may come in the same read as the CONNACK
        const messages: { topic: string; payload: string }[] = []
        client.on('message', (topic, payload) => messages.push({ topic, payload: String(payload) }))
        client.once('connect', (connack) => resolve({ client, connack, messages }))
        client.once('error', (err) => {
          client.end(true)
          reject(err)
        })
        client.once('close', () => reject(new Error('closed before CONNACK')))
      })
    },
    upgrade(path, headers = {}, protocol) {
      return new Promise((resolve) => {
        const ws = new WebSocket(`${s.ws}${path}`, protocol, { headers })
        sockets.add(ws)
        ws.on('error', () => resolve(0))
        ws.on('unexpected-response', (_req, res) => {
          resolve(res.statusCode ?? 0)
          res.resume()
          ws.terminate()
        })
        ws.on('open', () => {
          resolve(101)
          ws.terminate()
        })
      })
    },
    async sse(path, headers = {}) {
      const abort = new AbortController()
      const res = await fetch(`${http}${path}`, {
        headers: { accept: 'text/event-stream', ...headers },
        signal: abort.signal,
      })
      abort.abort()
      return res.status
    },
    async snapshot() {
      const out: Record<string, { status: number; text: string }> = {}
      for (const path of WATCHED) {
        const { status, text } = await rest('admin', 'GET', path)
        out[path] = { status, text }
      }
      return out
    },
    async close() {
      await Promise.all([...clients].map((c) => c.endAsync(true).catch(() => {})))
      for (const ws of sockets) ws.terminate()
      const code = await server.stop()
      await root.remove()
      if (code !== 0) throw new Error(`server exited with ${code}:\n${server.output()}`)
    },
  }
  // users and the data the suites protect
  for (const user of [READER, WRITER]) {
    const res = await rest('admin', 'POST', '/_admin/users', { ...user, role: user.username })
    if (res.status !== 201) throw new Error(`cannot add ${user.username}: ${res.status} ${res.text}`)
  }
  for (const [path, value] of [
    ['/Secret/1', { id: '1', value: SECRET }],
    ['/Dog/1', { id: '1', name: 'Rex' }],
  ] as const) {
    const res = await rest('admin', 'PUT', path, value)
    if (res.status >= 300) throw new Error(`cannot seed ${path}: ${res.status} ${res.text}`)
  }
  const { client } = await s.connect('admin', 'tcp')
  await client.publishAsync('public/notice', 'hello', { qos: 1, retain: true })
  await client.endAsync()
  return s
}

/** The reason code of a QoS 1 publish: 0 for success, else the PUBACK's (MQTT 5). */
export function pubackCode(
  client: MqttClient,
  topic: string,
  payload: string,
  options: { retain?: boolean } = {},
): Promise<{ code: number; reason: string | undefined }> {
  return new Promise((resolve) => {
    client.publish(topic, payload, { qos: 1, retain: options.retain ?? false }, (err, packet) => {
      const code =
        (err as { code?: number } | undefined)?.code ??
        (packet as { reasonCode?: number } | undefined)?.reasonCode ??
        0
      const reason = (packet as { properties?: { reasonString?: string } } | undefined)?.properties
        ?.reasonString
      resolve({
        code: typeof code === 'number' ? code : -1,
        reason: reason ?? (err ? err.message : undefined),
      })
    })
  })
}

/** The SUBACK reason code of each filter (mqtt.js rejects a SUBACK with any refusal; the codes are in it). */
export async function subackCodes(client: MqttClient, filters: string[]): Promise<number[]> {
  try {
    const granted = await client.subscribeAsync(filters, { qos: 1 })
    return granted.map((g) => g.qos)
  } catch (err) {
    const granted = (err as { packet?: { granted?: number[] } }).packet?.granted
    if (!granted) throw err
    return granted
  }
}
