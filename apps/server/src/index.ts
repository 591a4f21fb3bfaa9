export type { CliIo } from './cli-program.js'
export { runCli } from './cli-program.js'
export type { ConfigSource, LoadConfigOptions, LoadedConfig } from './config.js'
export { coerceValue, loadConfig, parseSetArguments } from './config.js'
export type { KeySpec, KeyType, ServerConfig } from './config-schema.js'
export { CONFIG_KEYS, envName, flagName } from './config-schema.js'
export type { ConfigIssue } from './errors.js'
export { ConfigError, ListenError } from './errors.js'
export type { ListenerInfo, ListenerName } from './listeners.js'
export type { CreateLoggerOptions, Logger } from './logger.js'
export { createLogger, formatPretty } from './logger.js'
export type { Server, StartServerOptions } from './server.js'
export {
  applicationFolders,
  DEFAULT_APPLICATION,
  ensureAdmin,
  openConfiguredRuntime,
  startServer,
} from './server.js'
export type { TlsMaterial } from './tls.js'
export { certificateUser, loadTlsMaterial, serverTlsOptions } from './tls.js'
