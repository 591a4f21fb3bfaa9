/**
 * The handler's counters, as plain numbers (like the MQTT broker's): requests and streams add to fields
 * of one object, and a monitoring layer (the server's Prometheus registry) reads them when scraped.
 */

/** Where a request came in: REST (and extra routes), the login endpoint, a record WebSocket, an SSE stream. */
export type HttpDoor = 'rest' | 'login' | 'ws' | 'sse'

/** The doors that stay open and carry events: record WebSockets and SSE streams. */
export type StreamDoor = 'ws' | 'sse'

/**
 * Counters since the handler was created, plus the streams open now. MQTT over WebSocket is the
 * broker's to count: only record WebSockets are `ws` here.
 */
export class HttpStats {
  /** Record WebSockets and SSE streams open now. */
  readonly open: Record<StreamDoor, number> = { ws: 0, sse: 0 }
  /** Streams opened since start. */
  readonly opened: Record<StreamDoor, number> = { ws: 0, sse: 0 }
  /**
   * Requests and upgrades answered 401: wrong credentials, an expired or revoked token, or none where
   * some are needed (as MQTT counts a refused anonymous CONNECT).
   */
  readonly authFailures: Record<HttpDoor, number> = { rest: 0, login: 0, ws: 0, sse: 0 }
  /** Messages received: authenticated REST writes (PUT, PATCH, POST, DELETE) and WebSocket client messages. */
  readonly messagesIn: Record<'rest' | 'ws', number> = { rest: 0, ws: 0 }
  /** Events sent: envelopes on record WebSockets and SSE frames. */
  readonly messagesOut: Record<StreamDoor, number> = { ws: 0, sse: 0 }
}
