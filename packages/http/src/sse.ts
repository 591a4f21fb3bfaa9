/**
 * Server-Sent Events framing (WHATWG HTML, "Server-sent events", section 9.2): `event:` is the event
 * type, `id:` the change-log cursor (so a reconnecting EventSource's Last-Event-ID resumes there),
 * `data:` the JSON envelope; comment lines keep idle proxies from closing the stream.
 */
import type { ResourceEvent } from '@proj/resource'

const encoder = new TextEncoder()

/** A heartbeat: an empty comment line. */
export const SSE_HEARTBEAT = ':\n\n'

/** Frames one SSE message. Multi-line data is split into several `data:` lines, as the format requires. */
export function formatSseMessage(fields: {
  event?: string
  id?: string | number
  data: string
  retry?: number
}): string {
  let out = ''
  if (fields.event !== undefined) out += `event: ${fields.event}\n`
  // An id with a newline or NUL would break framing; cursors are numbers, so this only guards misuse.
  if (fields.id !== undefined) out += `id: ${String(fields.id).replace(/[\r\n\0]/g, '')}\n`
  if (fields.retry !== undefined) out += `retry: ${fields.retry}\n`
  for (const line of fields.data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`
  return `${out}\n`
}

/**
 * The SSE frame for an event given its encoded JSON envelope. A logged event's id is its cursor; the
 * last current value sent at subscribe time carries the cursor that state is as of (`resumeCursor`),
 * so resuming with it is exact. Other unlogged events (earlier current values, QoS 0 messages) carry
 * no `id:`, so the client's last id stays the last position it fully holds. `issuer` (the runtime's
 * `cursorIssuer`, a node with `cluster.ack: local`) follows the cursor after a dot, in base 36: such a
 * node's cursor is exact on another node only together with it.
 */
export function sseFrame(event: ResourceEvent, json: Uint8Array, issuer?: number): Uint8Array {
  const data = Buffer.from(json.buffer, json.byteOffset, json.byteLength).toString('utf8')
  const cursor = event.cursor > 0 ? event.cursor : event.resumeCursor
  const id = cursor === undefined || issuer === undefined ? cursor : `${cursor}.${issuer.toString(36)}`
  return encoder.encode(formatSseMessage({ event: event.type, id, data }))
}

/** A resume position: the cursor, and the node that issued it when the id names one. */
export interface EventPosition {
  after: number
  issuer?: number
}

/**
 * Parses Last-Event-ID (header, or `?lastEventId=` for clients that cannot set it): a cursor, or
 * `<cursor>.<issuer, base 36>` from a node with `cluster.ack: local`.
 */
export function parseLastEventId(value: string | null | undefined): EventPosition | undefined {
  if (value === null || value === undefined) return undefined
  const match = /^(\d+)(?:\.([0-9a-z]{1,7}))?$/.exec(value.trim())
  if (match === null) return undefined
  const after = Number(match[1])
  if (!Number.isSafeInteger(after)) return undefined
  if (match[2] === undefined) return { after }
  const issuer = Number.parseInt(match[2], 36)
  return issuer <= 0xffffffff ? { after, issuer } : undefined
}
