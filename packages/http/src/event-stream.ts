/**
 * Server-Sent Events on a record or table: runs the runtime's connect() with no incoming messages
 * and writes each event as an SSE frame, with heartbeats and a bound on unsent bytes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { RequestContext, ResourceEvent, Runtime } from '@proj/resource'
import type { EnvelopeEncoder } from './envelope.js'
import { type EventPosition, SSE_HEARTBEAT } from './sse.js'
import type { HttpStats } from './stats.js'
import type { TrackStream } from './user-streams.js'

export interface EventStreamOptions {
  runtime: Runtime
  req: IncomingMessage
  res: ServerResponse
  target: string
  ctx: RequestContext
  /** Resume after this change-log cursor (Last-Event-ID), of the node that issued it when it names one. */
  position: EventPosition | undefined
  heartbeatMs: number
  maxQueuedBytes: number
  encoder: EnvelopeEncoder
  /** Registers a closer with the handler (for handler.close()); returns an unregister function. */
  track: TrackStream
  /** Counts the stream while open and the events it sends. */
  stats: HttpStats
  /** Told about an unexpected error that ended the stream after its headers went out (for logging). */
  onFault?: (err: unknown) => void
}

/** Opens the stream; rejects (before any header is sent) when connect() refuses. */
export async function openEventStream(o: EventStreamOptions): Promise<void> {
  const events = await o.runtime.connect(o.target, o.ctx, undefined, o.position)
  const iterator = events[Symbol.asyncIterator]()
  const { req, res, stats } = o
  let closed = false
  let counted = false
  const close = () => {
    if (closed) return
    closed = true
    if (counted) stats.open.sse--
    clearInterval(heartbeat)
    untrack()
    void iterator.return?.()
    if (!res.writableEnded) res.end()
  }
  const heartbeat = setInterval(() => {
    if (res.writableLength <= o.maxQueuedBytes) res.write(SSE_HEARTBEAT)
  }, o.heartbeatMs)
  heartbeat.unref()
  const untrack = o.track(close)
  req.socket.setTimeout(0)
  req.socket.setNoDelay(true)
  res.on('close', close)
  // The client may have gone while connect() was subscribing; then 'close' has already fired.
  if (res.closed || req.socket.destroyed) {
    close()
    return
  }
  // Headers already set on res (CORS) are merged in by writeHead.
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  })
  res.flushHeaders()
  counted = true
  stats.open.sse++
  stats.opened.sse++
  try {
    for (;;) {
      const next: IteratorResult<ResourceEvent> = await iterator.next()
      if (next.done || closed) break
      const frame = o.encoder.encodeSse(next.value)
      if (res.writableLength + frame.byteLength > o.maxQueuedBytes) {
        // The client is not reading: drop the connection rather than buffer without bound. It
        // reconnects with Last-Event-ID and catches up from the change log.
        res.destroy()
        break
      }
      res.write(frame)
      stats.messagesOut.sse++
    }
  } catch (err) {
    // The stream failed after the headers went out (the runtime, resource code, an encoder): all
    // SSE can do is end this stream; the client reconnects with Last-Event-ID.
    o.onFault?.(err)
  } finally {
    close()
  }
}
