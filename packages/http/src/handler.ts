/**
 * The one entry point: an HTTP request/upgrade handler over a resource runtime, for the caller to
 * attach to its own http.Server or https.Server.
 */
import { type Server as HttpServer, type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http'
import type { Server as HttpsServer } from 'node:https'
import type { Duplex } from 'node:stream'
import type { RequestContext, Runtime, User } from '@proj/resource'
import { createWebSocketStream, type WebSocket, WebSocketServer } from 'ws'
import { authChallenge, requestCredentials, resolveUser } from './auth.js'
import {
  answerPreflight,
  applyCors,
  type CorsOptions,
  carriesAmbientCredentials,
  isPreflight,
  streamOriginAllowed,
  streamOriginsOf,
} from './cors.js'
import { EnvelopeEncoder } from './envelope.js'
import { errorBody, HttpError, retryAfterSeconds } from './errors.js'
import { openEventStream } from './event-stream.js'
import { ExtraRoutes, type RouteHandler } from './extra-routes.js'
import { login } from './login.js'
import { acceptFromQuery, chooseResponseType, wantsEventStream } from './media.js'
import { requestHeader } from './request-header.js'
import { sendError } from './respond.js'
import { handleRest, type RestContext } from './rest.js'
import { parseRoute, streamTarget } from './route.js'
import { parseLastEventId } from './sse.js'
import { type HttpDoor, HttpStats } from './stats.js'
import { type TrackStream, UserStreams } from './user-streams.js'
import { CLOSE_CODES, prepareRecordSocket } from './websocket.js'

/** Handles a WebSocket whose negotiated sub-protocol it is registered for (e.g. MQTT). */
export type SubprotocolHandler = (stream: Duplex, req: IncomingMessage) => void

export type { RouteHandler } from './extra-routes.js'

export interface HttpOptions {
  runtime: Runtime
  /** CORS; off (no CORS headers, preflights refused) when omitted. */
  cors?: CorsOptions
  /**
   * Origins besides the server's own whose pages may open WebSockets (records and sub-protocols such as
   * MQTT) and event streams that carry cookies or Basic credentials; others get 403. Default: the `cors`
   * origins when they are a list, else none (CORS `*` does not extend to streams); `'*'` = any origin.
   */
  streamOrigins?: string[] | '*'
  /** Largest accepted request body in bytes (default 1 MiB); larger is 413. Also the WebSocket message limit. */
  maxBodySize?: number
  /** Interval of SSE heartbeat comments (default 15 000 ms). */
  sseHeartbeatMs?: number
  /** Unsent bytes a WebSocket or SSE client may have queued before it is dropped (default 1 MiB). */
  wsMaxQueuedBytes?: number
  /** Ping interval for record WebSockets; a client that misses a pong is dropped (default 30 000 ms, 0 = off). */
  wsPingMs?: number
  /**
   * WebSocket sub-protocols handed off as streams, e.g. `{ mqtt: broker.handle }`. A `mqtt` handler also
   * serves `mqttv3.1` (MQTT 3.1 clients) unless that name has its own.
   */
  subprotocols?: Record<string, SubprotocolHandler>
  /**
   * Extra routes keyed `'METHOD /path'` or `'/path'` (any method), checked before records. A key ending
   * in `/*` (`'/_admin/*'`, `'GET /studio/*'`) takes every path under that prefix, and the prefix itself.
   */
  extraRoutes?: Record<string, RouteHandler>
  /** Path of the token endpoint (default `/login`); `false` turns it off. */
  loginPath?: string | false
  /** Lifetime of tokens from the login endpoint (default: the runtime's). */
  tokenExpiresInMs?: number
  /** Called with unexpected (5xx) errors, for logging. */
  onError?: (err: unknown, req: IncomingMessage) => void
}

export interface HttpHandler {
  /** Serves one HTTP request (REST, SSE, login, extra routes). */
  handleRequest(req: IncomingMessage, res: ServerResponse): Promise<void>
  /** Serves one upgrade request (record WebSockets and registered sub-protocols). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void
  /** Registers handleRequest and handleUpgrade on a server (`request` and `upgrade` events). */
  attach(server: HttpServer | HttpsServer): void
  /** Closes every WebSocket (1001) and event stream and detaches from attached servers. */
  close(): Promise<void>
  /** Streams open, authentication failures and messages in and out by door, read by monitoring. */
  readonly stats: HttpStats
}

/** Methods that write (a record, a topic's message): counted as messages in. */
const WRITE_METHODS = new Set(['PUT', 'PATCH', 'POST', 'DELETE'])

const DEFAULTS = {
  maxBodySize: 1024 * 1024,
  sseHeartbeatMs: 15_000,
  wsMaxQueuedBytes: 1024 * 1024,
  wsPingMs: 30_000,
}

/** The Accept value of a request: the `?accept=` fallback first, else the header. */
function requestAccept(req: IncomingMessage, query: URLSearchParams): string | undefined {
  return acceptFromQuery(query.get('accept')) ?? requestHeader(req, 'accept')
}

/**
 * Answers an upgrade that cannot proceed with a plain HTTP response on the raw socket; returns the
 * status it chose (or would have, when the socket is gone).
 */
function refuseUpgrade(socket: Duplex, err: unknown): number {
  const body = errorBody(err)
  if (!socket.writable) {
    socket.destroy()
    return body.status
  }
  const text = JSON.stringify(body)
  const retryAfter = retryAfterSeconds(body)
  socket.end(
    `HTTP/1.1 ${body.status} ${STATUS_CODES[body.status] ?? ''}\r\nConnection: close\r\n` +
      (retryAfter === undefined ? '' : `Retry-After: ${retryAfter}\r\n`) +
      `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
  )
  return body.status
}

/** The last resort of a request: a 500 with a fixed JSON body, or a cut connection once headers went out. */
function sendInternalError(res: ServerResponse): void {
  try {
    if (res.headersSent) {
      res.destroy()
      return
    }
    const body = JSON.stringify({ error: 'INTERNAL', message: 'internal server error', status: 500 })
    res.writeHead(500, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
    })
    res.end(body)
  } catch {
    res.destroy()
  }
}

/**
 * Creates the handler.
 *
 * @example
 * import { createServer } from 'node:http'
 * import { createHttpHandler } from '@proj/http'
 *
 * const handler = createHttpHandler({ runtime, cors: { origins: '*' }, subprotocols: { mqtt: broker.handle } })
 * const server = createServer()
 * handler.attach(server)
 * server.listen(8080)
 */
export function createHttpHandler(options: HttpOptions): HttpHandler {
  const { runtime, cors } = options
  const streamOrigins = streamOriginsOf(cors, options.streamOrigins)
  const maxBodySize = options.maxBodySize ?? DEFAULTS.maxBodySize
  const heartbeatMs = options.sseHeartbeatMs ?? DEFAULTS.sseHeartbeatMs
  const maxQueuedBytes = options.wsMaxQueuedBytes ?? DEFAULTS.wsMaxQueuedBytes
  const pingMs = options.wsPingMs ?? DEFAULTS.wsPingMs
  const loginPath = options.loginPath === undefined ? '/login' : options.loginPath
  const subprotocols = options.subprotocols ?? {}
  const encoder = new EnvelopeEncoder(() => runtime.cursorIssuer)
  const stats = new HttpStats()
  const closers = new Set<() => void>()
  const attached: { server: HttpServer | HttpsServer; request: any; upgrade: any }[] = []
  let closing = false

  const userStreams = new UserStreams()
  const stopFollowingUsers = runtime.onUserChange?.((change) => userStreams.revoke(change)) ?? (() => {})

  const track = (close: () => void) => {
    if (closing) {
      // Opened while close() ran (it was still authenticating or subscribing): end it as well, once
      // its opener has finished setting it up.
      queueMicrotask(close)
      return () => false
    }
    closers.add(close)
    return () => closers.delete(close)
  }

  /** track() for a stream of `user`: closed at shutdown, and when a user change revokes its access. */
  const trackStream =
    (user: User | null, viaToken: boolean): TrackStream =>
    (close) => {
      const untrack = track(() => close('shutdown'))
      const untrackUser = userStreams.add(user, runtime.anonymous(), viaToken, () => close('revoked'))
      return () => {
        untrackUser()
        return untrack()
      }
    }

  const extraRoutes = new ExtraRoutes(options.extraRoutes ?? {})
  const loginOptions = { maxBodySize, tokenExpiresInMs: options.tokenExpiresInMs }

  /** Logs an unexpected error through onError; a failing onError is not allowed to escape either. */
  const report = (err: unknown, req: IncomingMessage) => {
    try {
      options.onError?.(err, req)
    } catch {}
  }

  const subprotocolHandler = (name: string): SubprotocolHandler | undefined =>
    subprotocols[name] ?? (name === 'mqttv3.1' ? subprotocols.mqtt : undefined)

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: maxBodySize,
    perMessageDeflate: false,
    clientTracking: false,
    handleProtocols: (offered) => {
      for (const name of offered) if (subprotocolHandler(name)) return name
      return false
    },
  })

  async function handleRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let preconditioned = false
    let door: HttpDoor = 'rest'
    // A response that fails to write must not become an unhandled 'error' event.
    res.on('error', (err) => report(err, req))
    try {
      if (closing) throw new HttpError('UNAVAILABLE', 'server is shutting down')
      const url = new URL(req.url ?? '/', 'http://localhost')
      const method = req.method ?? 'GET'
      if (isPreflight(req)) return answerPreflight(cors, req, res)
      applyCors(cors, req, res)

      const extra = extraRoutes.find(method, url.pathname)
      if (extra) return await extra(req, res)
      if (loginPath !== false && url.pathname === loginPath) {
        door = 'login'
        if (method !== 'POST') {
          res.setHeader('Allow', 'POST')
          throw new HttpError('METHOD_NOT_ALLOWED', `use POST ${loginPath}`)
        }
        return await login(runtime, req, res, loginOptions)
      }

      const route = parseRoute(url.pathname)
      if (!route) throw new HttpError('NOT_FOUND', 'no resource at /')
      const credentials = requestCredentials(req, url.searchParams)
      const accept = requestAccept(req, url.searchParams)
      const eventStream = method === 'GET' && wantsEventStream(accept)
      if (eventStream) door = 'sse'
      // before any password is checked: a foreign page must not spend its visitor's back-off either
      if (eventStream && carriesAmbientCredentials(req) && !streamOriginAllowed(streamOrigins, req)) {
        throw new HttpError(
          'FORBIDDEN',
          `event streams with credentials from origin ${req.headers.origin} are not allowed`,
        )
      }
      const user = await resolveUser(runtime, credentials, req.socket.remoteAddress)

      if (eventStream) {
        const ctx: RequestContext = { user, transport: 'sse' }
        const position = parseLastEventId(
          requestHeader(req, 'last-event-id') ?? url.searchParams.get('lastEventId'),
        )
        return await openEventStream({
          runtime,
          req,
          res,
          target: streamTarget(route, url.search),
          ctx,
          position,
          heartbeatMs,
          maxQueuedBytes,
          encoder,
          track: trackStream(user, credentials.scheme === 'bearer'),
          stats,
          onFault: (err) => report(err, req),
        })
      }
      if (WRITE_METHODS.has(method)) stats.messagesIn.rest++

      const rc: RestContext = {
        runtime,
        req,
        res,
        route,
        query: url.searchParams,
        search: url.search,
        accept,
        ctx: { user, transport: 'http' },
        maxBodySize,
        preconditioned: false,
      }
      try {
        await handleRest(rc)
      } finally {
        preconditioned = rc.preconditioned
      }
    } catch (err) {
      // The barrier of one request: whatever it threw becomes its error response (500 with a JSON
      // body for the unexpected), and nothing reaches the process.
      try {
        const body = sendError(res, err, preconditioned, () => authChallenge(req, door === 'login'))
        if (body.status === 401) stats.authFailures[door]++
        if (body.status >= 500) report(err, req)
      } catch (failure) {
        // Rendering the error failed too (e.g. details that cannot be serialized): a bare 500.
        report(failure, req)
        sendInternalError(res)
      }
    }
  }

  function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy())
    void (async () => {
      try {
        if (closing) throw new HttpError('UNAVAILABLE', 'server is shutting down')
        if (!streamOriginAllowed(streamOrigins, req))
          throw new HttpError(
            'FORBIDDEN',
            `WebSocket connections from origin ${req.headers.origin} are not allowed`,
          )
        const offered = (requestHeader(req, 'sec-websocket-protocol') ?? '')
          .split(',')
          .map((p) => p.trim())
          .filter((p) => p !== '')
        const protocol = offered.find((name) => subprotocolHandler(name))
        if (protocol !== undefined) {
          const handler = subprotocolHandler(protocol)!
          wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
            const untrack = track(() => ws.close(1001, 'server shutting down'))
            ws.once('close', untrack)
            try {
              handler(createWebSocketStream(ws), req)
            } catch (err) {
              report(err, req)
              ws.close(CLOSE_CODES.INTERNAL_ERROR, 'internal error')
            }
          })
          return
        }

        const url = new URL(req.url ?? '/', 'http://localhost')
        const route = parseRoute(url.pathname)
        if (!route) throw new HttpError('NOT_FOUND', 'no resource at /')
        const credentials = requestCredentials(req, url.searchParams)
        const user = await resolveUser(runtime, credentials, req.socket.remoteAddress)
        const accept = requestAccept(req, url.searchParams)
        const mediaType = chooseResponseType(accept)
        const declared =
          requestHeader(req, 'content-type') ?? acceptFromQuery(url.searchParams.get('content-type'))
        const prepared = await prepareRecordSocket({
          runtime,
          target: streamTarget(route, url.search),
          ctx: { user, transport: 'ws' },
          mediaType,
          incomingType: declared ?? mediaType,
          maxQueuedBytes,
          pingMs,
          encoder,
          stats,
          onFault: (err) => report(err, req),
        })
        if (!socket.writable || closing) {
          prepared.abort()
          socket.destroy()
          return
        }
        wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
          try {
            prepared.attach(ws, trackStream(user, credentials.scheme === 'bearer'))
          } catch (err) {
            report(err, req)
            prepared.abort()
            ws.close(CLOSE_CODES.INTERNAL_ERROR, 'internal error')
          }
        })
      } catch (err) {
        try {
          const status = refuseUpgrade(socket, err)
          if (status === 401) stats.authFailures.ws++
          if (status >= 500) report(err, req)
        } catch (failure) {
          report(failure, req)
          socket.destroy()
        }
      }
    })()
  }

  return {
    handleRequest,
    handleUpgrade,
    stats,
    attach(server) {
      const request = (req: IncomingMessage, res: ServerResponse) => void handleRequest(req, res)
      const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => handleUpgrade(req, socket, head)
      server.on('request', request)
      server.on('upgrade', upgrade)
      attached.push({ server, request, upgrade })
    },
    async close() {
      closing = true
      stopFollowingUsers()
      for (const { server, request, upgrade } of attached.splice(0)) {
        server.off('request', request)
        server.off('upgrade', upgrade)
      }
      for (const close of [...closers]) close()
      closers.clear()
      await new Promise<void>((resolve) => wss.close(() => resolve()))
    },
  }
}
