/**
 * What an operator needs to see at the default log level when clients are refused: failed
 * authentications (every door), HTTP 401/403/413 answers, MQTT CONNECTs refused. Each kind is
 * rate-limited (the first at once, then one line per interval counting the ones left out), so a client
 * that keeps retrying cannot flood the log. Lines name the client id or address, never a password or
 * a token (the query string, which may hold `access_token`, is left out).
 */
import type { EventEmitter } from 'node:events'
import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http'
import { RateLimitedLog } from '@proj/mqtt'
import type { AuthFailure } from '@proj/resource'
import type { Logger } from './logger.js'

export class RefusalLog {
  /** Each kind of refusal is rate-limited the way the broker limits its fault lines. */
  private readonly limited: RateLimitedLog

  constructor(logger: Logger, intervalMs?: number) {
    this.limited = new RateLimitedLog(logger, intervalMs)
  }

  /** Logs at warn unless a line of this kind was written less than an interval ago. */
  warn(kind: string, fields: Record<string, unknown>, message: string): void {
    this.limited.warn(kind, fields, message)
  }

  /** The runtime's report of a failed password check (MQTT, HTTP Basic, /login). */
  authFailure(failure: AuthFailure): void {
    this.warn(
      'auth',
      { component: 'auth', ...failure },
      `authentication of '${failure.username}'${failure.source ? ` from ${failure.source}` : ''} failed: ${failure.reason}`,
    )
  }

  /** MQTT CONNECTs refused for their credentials (also anonymous access, unknown certificate users, AUTH). */
  watchBroker(events: EventEmitter): void {
    // The event names the address: no entry per connection is kept for it.
    events.on(
      'auth-failed',
      (details: {
        clientId: string
        username: string | undefined
        reason: string
        remoteAddress?: string
      }) => {
        const remoteAddress = details.remoteAddress
        this.warn(
          'mqtt-auth',
          { component: 'mqtt', clientId: details.clientId, username: details.username, remoteAddress },
          `mqtt: CONNECT of '${details.clientId}'${remoteAddress ? ` from ${remoteAddress}` : ''} refused: ${details.reason}`,
        )
      },
    )
  }

  /** HTTP answers that refuse the client: 401, 403 (refused reads and writes) and 413. */
  watchHttp(server: HttpServer): void {
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      res.once('finish', () => {
        const status = res.statusCode
        if (status !== 401 && status !== 403 && status !== 413) return
        const path = (req.url ?? '/').split('?')[0]
        this.warn(
          `http-${status}`,
          { component: 'http', status, method: req.method, path, remoteAddress: req.socket.remoteAddress },
          `http: ${req.method} ${path} from ${req.socket.remoteAddress ?? 'unknown'} answered ${status}`,
        )
      })
    })
  }
}
