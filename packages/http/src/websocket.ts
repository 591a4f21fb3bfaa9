/**
 * WebSocket (RFC 6455) on records: `ws://host/Table/id` runs the runtime's connect() with the
 * client's messages as `incoming` and streams event envelopes back, in the format negotiated from
 * the upgrade's Accept (or `?accept=`). The outgoing queue is bounded: a client that stops reading
 * is closed with 1008 (policy violation) instead of growing the server's memory.
 */
import type { RequestContext, ResourceEvent, Runtime } from '@proj/resource'
import { type RawData, WebSocket } from 'ws'
import { AsyncQueue } from './async-queue.js'
import type { EnvelopeEncoder } from './envelope.js'
import { errorCode } from './errors.js'
import { decodeBody, isJsonType } from './media.js'
import type { HttpStats } from './stats.js'
import type { TrackStream } from './user-streams.js'

/** Close codes used here (RFC 6455 section 7.4.1). */
export const CLOSE_CODES = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  INTERNAL_ERROR: 1011,
})

/** How long a socket closed for being slow may take to flush its close frame before it is destroyed. */
const SLOW_CLOSE_GRACE_MS = 5000

export interface RecordSocketOptions {
  runtime: Runtime
  target: string
  ctx: RequestContext
  /** Media type of outgoing envelopes. */
  mediaType: string
  /** Media type of incoming binary frames (text frames are always JSON). */
  incomingType: string
  maxQueuedBytes: number
  /** Ping interval; a client that has not answered the previous ping by the next one is dropped. 0 = off. */
  pingMs: number
  encoder: EnvelopeEncoder
  /** Counts the socket while open and the messages in and out. */
  stats: HttpStats
  /** Told about an unexpected error that closed the socket with 1011 (for logging). */
  onFault?: (err: unknown) => void
}

/**
 * Prepares a record socket before the upgrade completes, so that a refusal from connect()
 * (not found, forbidden) can still be answered with an HTTP status.
 */
export async function prepareRecordSocket(
  o: RecordSocketOptions,
): Promise<{ attach(ws: WebSocket, track: TrackStream): void; abort(): void }> {
  let ws: WebSocket | undefined
  const incoming = new AsyncQueue<unknown>({
    // An unread incoming queue pauses the socket, so TCP pushes back on the client.
    onHigh: () => ws?.pause(),
    onDrain: () => ws?.resume(),
  })
  const events = await o.runtime.connect(o.target, o.ctx, incoming)
  const iterator = events[Symbol.asyncIterator]()
  const binary = !isJsonType(o.mediaType)

  return {
    abort() {
      incoming.end()
      void iterator.return?.()
    },
    attach(socket, track) {
      ws = socket
      const stats = o.stats
      stats.open.ws++
      stats.opened.ws++
      let done = false
      const finish = (code: number, reason: string) => {
        if (done) return
        done = true
        stats.open.ws--
        untrack()
        incoming.end()
        void iterator.return?.()
        if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) {
          socket.close(code, reason)
        }
      }
      const untrack = track((why) =>
        why === 'revoked'
          ? finish(CLOSE_CODES.POLICY_VIOLATION, 'access revoked')
          : finish(CLOSE_CODES.GOING_AWAY, 'server shutting down'),
      )
      let alive = true
      const pinger =
        o.pingMs > 0
          ? setInterval(() => {
              if (!alive) {
                socket.terminate()
                return
              }
              alive = false
              socket.ping()
            }, o.pingMs)
          : undefined
      pinger?.unref()
      socket.on('pong', () => {
        alive = true
      })
      socket.on('close', () => {
        clearInterval(pinger)
        finish(CLOSE_CODES.NORMAL, '')
      })
      socket.on('error', () => socket.terminate())
      const fault = (err: unknown) => {
        o.onFault?.(err)
        finish(CLOSE_CODES.INTERNAL_ERROR, 'internal error')
      }
      socket.on('message', (data: RawData, isBinary: boolean) => {
        // ws hands over a Buffer by default (binaryType 'nodebuffer'); Buffer.from would copy it.
        const bytes = Buffer.isBuffer(data)
          ? data
          : Array.isArray(data)
            ? Buffer.concat(data)
            : Buffer.from(data)
        let value: unknown
        try {
          value = decodeBody(bytes, isBinary ? o.incomingType : 'application/json')
        } catch {
          finish(CLOSE_CODES.INVALID_PAYLOAD, `message is not valid ${isBinary ? o.incomingType : 'JSON'}`)
          return
        }
        stats.messagesIn.ws++
        try {
          incoming.push(value)
        } catch (err) {
          fault(err)
        }
      })

      void (async () => {
        try {
          for (;;) {
            const next: IteratorResult<ResourceEvent> = await iterator.next()
            if (next.done || done) break
            const bytes = o.encoder.encode(next.value, o.mediaType)
            if (socket.bufferedAmount + bytes.byteLength > o.maxQueuedBytes) {
              finish(CLOSE_CODES.POLICY_VIOLATION, 'outgoing queue limit exceeded')
              // The close frame waits behind the unread bytes; give it a moment, then let go.
              setTimeout(() => socket.terminate(), SLOW_CLOSE_GRACE_MS).unref()
              return
            }
            socket.send(bytes, { binary })
            stats.messagesOut.ws++
          }
          finish(CLOSE_CODES.NORMAL, 'stream ended')
        } catch (err) {
          const forbidden = errorCode(err) === 'FORBIDDEN' || errorCode(err) === 'UNAUTHORIZED'
          if (forbidden) finish(CLOSE_CODES.POLICY_VIOLATION, 'forbidden')
          else fault(err)
        }
      })()
    },
  }
}
