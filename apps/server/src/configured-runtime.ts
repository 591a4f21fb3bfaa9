import { EventEmitter } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdir, readdir } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  type AuthFailure,
  openRuntime,
  type ResourceRuntime,
  type RoleDefinition,
  type RuntimeOptions,
} from '@proj/resource'
import type { Store } from '@proj/storage'
import { reportApplications } from './application-report.js'
import type { ServerConfig } from './config-schema.js'
import { createLogger, type Logger } from './logger.js'
import { RefusalLog } from './refusal-log.js'
import type { Server } from './server-types.js'

/** The built-in application (a `Dog` table), used when the applications folder does not exist. */
export const DEFAULT_APPLICATION = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'default-app')

/** Sub-folders of the applications folder, or the built-in default application when it does not exist. */
export async function applicationFolders(path: string): Promise<{ folders: string[]; builtIn: boolean }> {
  if (!existsSync(path)) return { folders: [DEFAULT_APPLICATION], builtIn: true }
  const entries = await readdir(path, { withFileTypes: true })
  const folders = entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.') && e.name !== 'node_modules')
    .map((e) => join(path, e.name))
    .sort()
  return { folders, builtIn: false }
}

/** Role definitions from the config mapping (`roles: { reader: { tables: … } }`) as the runtime takes them. */
export function roleDefinitions(roles: Record<string, unknown>): RoleDefinition[] {
  return Object.entries(roles).map(([name, definition]) => ({ ...(definition as object), name }))
}

/**
 * Opens the resource runtime the config describes (storage, applications, roles, retention).
 * Used by `startServer` and by the CLI's `user` commands.
 */
export async function openConfiguredRuntime(
  config: ServerConfig,
  options: {
    server?: Server
    logger?: Logger
    root?: string
    store?: Store
    relay?: RuntimeOptions['relay']
    shared?: RuntimeOptions['shared']
  } = {},
): Promise<ResourceRuntime> {
  await mkdir(config.storage.path, { recursive: true })
  const { folders, builtIn } = await applicationFolders(config.applications.path)
  if (builtIn) {
    options.logger?.info(
      { applications: config.applications.path },
      'no applications folder; using the built-in default application (table Dog)',
    )
  }
  const logger = options.logger
  // failed passwords, rate-limited: a client retrying in a loop cannot flood the log
  const refusals = logger ? new RefusalLog(logger) : undefined
  // Outside `start` (the CLI's user commands) applications still load, so they get a server that never
  // listens: same shape, no listeners, events that never fire.
  let opened: ResourceRuntime | undefined
  const server =
    options.server ??
    offlineServer(
      config,
      options.root ?? process.cwd(),
      logger ?? createLogger({ level: 'silent', format: 'json' }),
      () => {
        if (!opened) throw new Error('the runtime is not open yet')
        return opened
      },
    )
  opened = await openRuntime({
    path: config.storage.path,
    ...(options.store !== undefined ? { store: options.store } : {}),
    ...(options.relay !== undefined ? { relay: options.relay } : {}),
    ...(options.shared !== undefined ? { shared: options.shared } : {}),
    applications: folders,
    allowAnonymous: config.anonymous.enabled,
    anonymousRole: config.anonymous.role,
    roles: roleDefinitions(config.roles),
    rejectUnclaimedTopics: config.mqtt.rejectUnclaimedTopics,
    retention: {
      maxAgeMs: config.changeLog.retention,
      ...(config.changeLog.maxEvents !== null ? { maxEvents: config.changeLog.maxEvents } : {}),
    },
    compactionIntervalMs: config.changeLog.compactionInterval,
    ...(logger ? { onError: (err: unknown) => logger.error({ err }, 'runtime error') } : {}),
    auth: {
      scramIterations: config.auth.scramIterations,
      scryptCost: config.auth.scryptCost,
      maxFailuresPerUser: config.auth.backoff.maxFailuresPerUser,
      maxFailuresPerAddress: config.auth.backoff.maxFailuresPerAddress,
      maxBackoffMs: config.auth.backoff.maxDelay,
      cacheTtlMs: config.auth.cacheTtl,
      ...(logger
        ? {
            onFailure: (failure: AuthFailure) => refusals?.authFailure(failure),
          }
        : {}),
    },
    // resources.js default exports receive this as `kit.context`
    context: { server },
  })
  if (logger) {
    reportApplications(
      opened,
      {
        folders,
        builtIn,
        applicationsPath: config.applications.path,
        storagePath: config.storage.path,
      },
      logger,
    )
  }
  return opened
}

function offlineServer(
  config: ServerConfig,
  root: string,
  logger: Logger,
  runtime: () => ResourceRuntime,
): Server {
  return {
    config,
    root,
    logger,
    mqtt: { events: new EventEmitter(), broker: undefined },
    http: { handler: undefined },
    get runtime() {
      return runtime()
    },
    listeners: [],
    close: async () => {},
    reload: async () => {
      throw new Error('this server does not listen: nothing to reload')
    },
  }
}
