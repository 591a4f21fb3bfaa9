import { constants } from 'node:fs'
import { access, readFile } from 'node:fs/promises'
import { isAbsolute, resolve } from 'node:path'
import { suggestEnv, unknownKey } from './config-hints.js'
import { roleIssues } from './config-roles.js'
import {
  BOOLEAN_SHORTHANDS,
  CONFIG_KEYS,
  envName,
  flagName,
  type ServerConfig,
  specFor,
} from './config-schema.js'
import { coerceValue, describeValue } from './config-values.js'
import { ConfigError, type ConfigIssue } from './errors.js'

/** Where a key's effective value came from; later sources win. */
export type ConfigSource = 'default' | 'file' | 'env' | 'flag'

export interface LoadConfigOptions {
  /** Root folder: config.yaml, data, applications and TLS paths are relative to it. Default `process.cwd()`. */
  root?: string
  /** Config file; relative to the current directory. Default `<root>/config.yaml` when it exists. */
  configFile?: string
  /** Environment to read `PROJ_*` overrides from. Default `process.env`. */
  env?: Record<string, string | undefined>
  /** Raw string overrides from CLI flags (`--mqtt-port 0`, `--set mqtt.maxKeepAlive=60`), by key path. */
  overrides?: Record<string, string>
  /** The flag that set each override, for error messages (default `--<key flag>`). */
  overrideSources?: Record<string, string>
  /** Typed overrides from code (e.g. tests, embedding); same precedence as flags. */
  values?: Record<string, unknown>
}

export interface LoadedConfig {
  config: ServerConfig
  root: string
  /** The config file that was read, or null. */
  file: string | null
  sources: ReadonlyMap<string, ConfigSource>
  /** Non-fatal remarks (unknown `PROJ_*` variables, secure ports skipped for want of TLS files). */
  notes: string[]
}

/** How the remark about an unknown `PROJ_*` variable starts (`proj-server config` prints those). */
export const UNKNOWN_ENV_NOTE = 'ignoring unknown environment variable'

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v)

/** Flattens a parsed YAML document into `key path → raw value`, reporting unknown keys. */
function flattenDocument(doc: unknown, issues: ConfigIssue[], source = 'file'): Map<string, unknown> {
  const out = new Map<string, unknown>()
  const walk = (node: Record<string, unknown>, prefix: string) => {
    for (const [name, value] of Object.entries(node)) {
      const key = prefix ? `${prefix}.${name}` : name
      const shorthand = BOOLEAN_SHORTHANDS[key]
      if (shorthand && typeof value === 'boolean') {
        out.set(shorthand, value)
      } else if (specFor(key)) {
        out.set(key, value)
      } else if (CONFIG_KEYS.some((s) => s.key.startsWith(`${key}.`))) {
        if (isPlainObject(value)) walk(value, key)
        else if (value !== null)
          issues.push({ key, source, reason: `must be a mapping, got ${describeValue(value)}` })
      } else {
        issues.push({ key, source, reason: unknownKey(key) })
      }
    }
  }
  if (doc === null || doc === undefined) return out
  if (!isPlainObject(doc)) {
    issues.push({ key: '(document)', source, reason: 'the configuration file must be a YAML mapping' })
    return out
  }
  walk(doc, '')
  return out
}

function setPath(target: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.')
  let node = target
  for (const part of parts.slice(0, -1)) {
    node[part] ??= {}
    node = node[part] as Record<string, unknown>
  }
  node[parts[parts.length - 1]!] = value
}

/** The environment variable for every key, plus shorthands (`PROJ_MQTT_MTLS`). */
const ENV_KEYS: ReadonlyMap<string, string> = new Map([
  ...CONFIG_KEYS.map((s) => [envName(s.key), s.key] as const),
  ...Object.entries(BOOLEAN_SHORTHANDS).map(([from, to]) => [envName(from), to] as const),
])

/**
 * Reads `<root>/config.yaml` (or `configFile`), applies `PROJ_*` environment variables, then CLI flags,
 * and validates every key. Throws ConfigError listing each bad key, where it came from and why.
 *
 * @example
 * const { config } = await loadConfig({ root: '/srv/proj', overrides: { 'mqtt.network.port': '0' } })
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const root = resolve(options.root ?? '.')
  const env = options.env ?? process.env
  const issues: ConfigIssue[] = []
  const notes: string[] = []
  const values = new Map<string, unknown>()
  const sources = new Map<string, ConfigSource>()
  const origin = new Map<string, string>()

  for (const spec of CONFIG_KEYS) {
    values.set(spec.key, spec.default)
    sources.set(spec.key, 'default')
  }
  const apply = (key: string, raw: unknown, source: ConfigSource, where: string, fromString: boolean) => {
    const spec = specFor(key)
    if (!spec) {
      issues.push({ key, source: where, reason: unknownKey(key) })
      return
    }
    const result = coerceValue(spec, raw, fromString)
    if (!result.ok) {
      issues.push({ key, source: where, reason: result.reason })
      return
    }
    if (key === 'roles') {
      const wrong = roleIssues(result.value as Record<string, unknown>)
      if (wrong.length > 0) {
        for (const issue of wrong) issues.push({ ...issue, source: where })
        return
      }
    }
    values.set(key, result.value)
    sources.set(key, source)
    origin.set(key, where)
  }

  // 1. the file
  let file: string | null = null
  const explicit = options.configFile ?? env.PROJ_CONFIG
  const candidate = explicit ? resolve(explicit) : resolve(root, 'config.yaml')
  let text: string | undefined
  try {
    text = await readFile(candidate, 'utf8')
    file = candidate
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (explicit || code !== 'ENOENT') {
      throw new ConfigError([
        { key: '(file)', source: candidate, reason: `cannot read the config file (${code})` },
      ])
    }
  }
  if (text !== undefined) {
    // the YAML parser (1 MB of RSS) only when there is a file to parse
    const { parse: parseYaml } = await import('yaml')
    let doc: unknown
    try {
      doc = parseYaml(text)
    } catch (error) {
      // The location goes last, as `file:line:column`, where editors and terminals can jump to it.
      const at = (error as { linePos?: { line: number; col: number }[] }).linePos?.[0]
      const reason = (error as Error).message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')
      throw new ConfigError([
        {
          key: '(file)',
          source: at ? `${candidate}:${at.line}:${at.col}` : candidate,
          reason: `invalid YAML: ${reason}`,
        },
      ])
    }
    for (const [key, raw] of flattenDocument(doc, issues, candidate))
      apply(key, raw, 'file', candidate, false)
  }

  // 2. the environment
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('PROJ_') || raw === undefined || name === 'PROJ_CONFIG' || name === 'PROJ_ROOT')
      continue
    const key = ENV_KEYS.get(name)
    if (key) apply(key, raw, 'env', name, true)
    else {
      const hint = suggestEnv(name)
      notes.push(`${UNKNOWN_ENV_NOTE} ${name}${hint ? ` (did you mean ${hint}?)` : ''}`)
    }
  }

  // 3. flags and code
  for (const [key, raw] of Object.entries(options.overrides ?? {})) {
    const target = BOOLEAN_SHORTHANDS[key] ?? key
    apply(target, raw, 'flag', options.overrideSources?.[key] ?? `--${flagName(target)}`, true)
  }
  for (const [key, raw] of Object.entries(options.values ?? {})) apply(key, raw, 'flag', 'options', false)

  if (issues.length) throw new ConfigError(issues)

  // Cross-key rules
  const get = <T>(key: string) => values.get(key) as T
  const where = (key: string) => origin.get(key) ?? 'default'
  const hasTls =
    get<string | null>('tls.certificate') !== null && get<string | null>('tls.privateKey') !== null
  if (get('tls.certificate') !== null && get('tls.privateKey') === null) {
    issues.push({ key: 'tls.privateKey', source: 'default', reason: 'required when tls.certificate is set' })
  }
  if (get('tls.privateKey') !== null && get('tls.certificate') === null) {
    issues.push({ key: 'tls.certificate', source: 'default', reason: 'required when tls.privateKey is set' })
  }
  for (const key of ['http.securePort', 'mqtt.network.securePort']) {
    if (get(key) === null || hasTls) continue
    if (sources.get(key) === 'default') {
      values.set(key, null)
      notes.push(`${key} not started: tls.certificate and tls.privateKey are not set`)
    } else {
      issues.push({ key, source: where(key), reason: 'needs tls.certificate and tls.privateKey' })
    }
  }
  if (get('mqtt.mTLS.enabled')) {
    if (get('tls.certificateAuthority') === null) {
      issues.push({
        key: 'mqtt.mTLS.enabled',
        source: where('mqtt.mTLS.enabled'),
        reason: 'needs tls.certificateAuthority',
      })
    }
    if (!hasTls) {
      issues.push({
        key: 'mqtt.mTLS.enabled',
        source: where('mqtt.mTLS.enabled'),
        reason: 'needs tls.certificate and tls.privateKey',
      })
    }
  }
  const bound: { key: string; host: string | null; port: number }[] = []
  for (const [key, hostKey] of [
    ['http.port', 'http.host'],
    ['http.securePort', 'http.host'],
    ['mqtt.network.port', 'mqtt.network.host'],
    ['mqtt.network.securePort', 'mqtt.network.host'],
  ] as const) {
    const port = get<number | null>(key)
    if (port === null || port === 0) continue
    // a null host binds every interface, so it clashes with any host on the same port
    const host = get<string | null>(hostKey)
    const clash = bound.find((b) => b.port === port && (b.host === null || host === null || b.host === host))
    if (clash) issues.push({ key, source: where(key), reason: `port ${port} is also ${clash.key}` })
    bound.push({ key, host, port })
  }

  issues.push(...clusterIssues(get, where))

  // Paths are relative to the root; TLS files must be readable now rather than at the first handshake.
  for (const spec of CONFIG_KEYS) {
    if (spec.type.kind !== 'path') continue
    const value = get<string | null>(spec.key)
    if (value === null) continue
    const absolute = isAbsolute(value) ? value : resolve(root, value)
    values.set(spec.key, absolute)
    if (spec.key.startsWith('tls.') || spec.key.startsWith('cluster.nats.')) {
      try {
        await access(absolute, constants.R_OK)
      } catch (error) {
        issues.push({
          key: spec.key,
          source: where(spec.key),
          reason: `cannot read ${absolute} (${(error as NodeJS.ErrnoException).code})`,
        })
      }
    }
  }
  if (issues.length) throw new ConfigError(issues)

  const config: Record<string, unknown> = {}
  for (const [key, value] of values) setPath(config, key, value)
  return { config: config as unknown as ServerConfig, root, file, sources, notes }
}

/** Parses `--set key.path=value` arguments. */
export function parseSetArguments(args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const arg of args) {
    const eq = arg.indexOf('=')
    if (eq <= 0) throw new ConfigError([{ key: arg, source: '--set', reason: 'expected key.path=value' }])
    out[arg.slice(0, eq).trim()] = arg.slice(eq + 1)
  }
  return out
}

/** Cluster keys: URLs that parse, a usable prefix, TLS and credentials only with servers. */
function clusterIssues(get: <T>(key: string) => T, where: (key: string) => string): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  const servers = get<string | null>('cluster.nats.servers')
  if (servers !== null) {
    const urls = servers.split(',').map((s) => s.trim())
    for (const url of urls) {
      if (!/^(nats|tls):\/\/[^\s/]+$/.test(url) && !/^[^\s/:]+:\d+$/.test(url)) {
        issues.push({
          key: 'cluster.nats.servers',
          source: where('cluster.nats.servers'),
          reason: `${JSON.stringify(url)} is not a NATS URL (nats://host:port or tls://host:port)`,
        })
      }
    }
  }
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(get<string>('cluster.prefix'))) {
    issues.push({
      key: 'cluster.prefix',
      source: where('cluster.prefix'),
      reason: 'must be 1-32 characters of A-Z, a-z, 0-9, _ and -',
    })
  }
  const name = get<string | null>('cluster.nodeName')
  if (name !== null && (name === '' || name.length > 128)) {
    issues.push({
      key: 'cluster.nodeName',
      source: where('cluster.nodeName'),
      reason: 'must be 1-128 characters',
    })
  }
  const certificate = get('cluster.nats.tls.certificate') !== null
  if (certificate !== (get('cluster.nats.tls.privateKey') !== null)) {
    const missing = certificate ? 'cluster.nats.tls.privateKey' : 'cluster.nats.tls.certificate'
    issues.push({
      key: missing,
      source: 'default',
      reason: 'required with the other half of the client certificate',
    })
  }
  return issues
}
