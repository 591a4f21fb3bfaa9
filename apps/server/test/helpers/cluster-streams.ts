// WebSocket and SSE subscribers of the cluster tests: each signs in as the admin and collects the
// envelopes it receives.
import { EventSource } from 'eventsource'
import WebSocket from 'ws'
import { AUTH, within } from './cluster.js'

export interface Envelope {
  type: string
  id: string
  value?: unknown
  version?: number
}

/** Called with a stream's close function, so the test closes it when it ends. */
export type Track = (close: () => void) => void

/** A WebSocket on `path` of `http`, collecting the envelopes it receives; resolves once it is open. */
export async function openWs(http: string, path: string, track: Track) {
  const ws = new WebSocket(`${http.replace('http', 'ws')}${path}`, { headers: { authorization: AUTH } })
  track(() => ws.close())
  const got: Envelope[] = []
  ws.on('message', (data) => got.push(JSON.parse(String(data)) as Envelope))
  await within(
    `WebSocket ${path} on ${http}`,
    new Promise((resolve, reject) => {
      ws.once('open', resolve)
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)))
      ws.once('error', reject)
    }),
  )
  return { ws, got }
}

/** An SSE stream of `path` on `http`, collecting the envelopes of its events; resolves once it is open. */
export async function openSse(http: string, path: string, track: Track) {
  const sse = new EventSource(`${http}${path}`, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, Authorization: AUTH } }),
  })
  track(() => sse.close())
  const got: Envelope[] = []
  for (const type of ['put', 'patch', 'delete', 'message'])
    sse.addEventListener(type, (e) => got.push(JSON.parse(e.data) as Envelope))
  await within(
    `SSE ${path} on ${http}`,
    new Promise<void>((resolve, reject) => {
      sse.onopen = () => resolve()
      sse.onerror = (e) => reject(new Error(`SSE failed: ${e.message}`))
    }),
  )
  return got
}

/** A record's or message's JSON without the `id` a record carries (the topic or envelope names it already). */
export function withoutId(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value)
  const { id: _id, ...rest } = value as Record<string, unknown>
  return JSON.stringify(rest)
}
