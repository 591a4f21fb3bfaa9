import type { EventEmitter } from 'node:events'
import type { HttpHandler } from '@proj/http'
import type { Broker } from '@proj/mqtt'
import type { ResourceRuntime } from '@proj/resource'
import type { ServerConfig } from './config-schema.js'
import type { ListenerInfo } from './listeners.js'
import type { Logger } from './logger.js'
import type { ReloadOutcome } from './reload.js'

export interface StartServerOptions {
  config: ServerConfig
  /** The root folder the config's relative paths were resolved against. */
  root: string
  logger?: Logger
  /** Source of ADMIN_USERNAME / ADMIN_PASSWORD for the first admin. Default `process.env`. */
  env?: Record<string, string | undefined>
  /** Told once when the first admin is created (the CLI prints a generated password there). */
  onAdminCreated?: (admin: { username: string; password: string; generated: boolean }) => void
  /** Told when ADMIN_PASSWORD is set but changes nothing (the store has its admin already): why, and the fix. */
  onAdminPasswordIgnored?: (warning: string) => void
}

/**
 * What application modules receive as `server`, and what `startServer` returns.
 * `mqtt.events` emits the broker's `connection`, `connected`, `auth-failed`, `disconnected` and
 * `publish-refused` events
 * and exists before applications load, so `resources.js` can subscribe at import time.
 */
export interface Server {
  readonly config: ServerConfig
  readonly root: string
  readonly logger: Logger
  readonly mqtt: { readonly events: EventEmitter; readonly broker: Broker | undefined }
  readonly http: { readonly handler: HttpHandler | undefined }
  readonly runtime: ResourceRuntime
  /** Where the server listens, once started. */
  readonly listeners: readonly ListenerInfo[]
  /** Graceful stop: stop accepting, let in-flight work finish (up to shutdown.timeout), persist wills, close LMDB. */
  close(): Promise<void>
  /**
   * Applies a new configuration's TLS files, roles and anonymous settings without dropping a connection
   * (SIGHUP). Rejects, changing nothing, when any of it is unusable; names changed keys that need a restart.
   */
  reload(next: ServerConfig): Promise<ReloadOutcome>
}
