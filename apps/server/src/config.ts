import { constants } from 'node:fs'
import { access, readFile } from 'node:fs/promises'
import { BlockList } from 'node:net'
import { isAbsolute, resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { addExempt } from './admission.js'
import {
  BOOLEAN_SHORTHANDS,
  CONFIG_KEYS,
  envName,
  flagName,
  type KeySpec,
  type ServerConfig,
  specFor,
} from './config-schema.js'
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

type Coerced = { ok: true; value: unknown } | { ok: false; reason: string }

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
}
const DURATION_UNITS: Record<string, number> = {
  '': 1,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
}

function describe(value: unknown): string {
  return typeof value === 'string' ? `'${value}'` : (JSON.stringify(value) ?? String(value))
}

function withUnit(raw: unknown, units: Record<string, number>, what: string): Coerced {
  if (typeof raw === 'number') {
    return Number.isSafeInteger(raw) && raw >= 0
      ? { ok: true, value: raw }
      : { ok: false, reason: `must be a non-negative integer ${what}, got ${describe(raw)}` }
  }
  if (typeof raw === 'string') {
    const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(raw)
    const factor = match ? units[match[2]!.toLowerCase()] : undefined
    if (match && factor !== undefined) return { ok: true, value: Math.round(Number(match[1]) * factor) }
  }
  const examples = what === 'size' ? '1048576, 512kb, 10mb, 1gb' : '5000, 30s, 15m, 24h, 7d'
  return { ok: false, reason: `must be a ${what} (${examples}), got ${describe(raw)}` }
}

/**
 * Converts one raw value to the key's type. `fromString` is true for environment variables and flags,
 * whose values are always text; YAML values arrive typed.
 */
export function coerceValue(spec: KeySpec, raw: unknown, fromString: boolean): Coerced {
  if (raw === null || (fromString && typeof raw === 'string' && /^(null|none)$/i.test(raw.trim()))) {
    return spec.nullable ? { ok: true, value: null } : { ok: false, reason: 'must not be null' }
  }
  const type = spec.type
  switch (type.kind) {
    case 'port':
    case 'integer': {
      const min = type.kind === 'port' ? 0 : (type.min ?? Number.MIN_SAFE_INTEGER)
      const max = type.kind === 'port' ? 65535 : (type.max ?? Number.MAX_SAFE_INTEGER)
      const n =
        typeof raw === 'number'
          ? raw
          : fromString && typeof raw === 'string' && /^\s*-?\d+\s*$/.test(raw)
            ? Number(raw)
            : Number.NaN
      if (Number.isSafeInteger(n) && n >= min && n <= max) return { ok: true, value: n }
      const range =
        type.kind === 'port'
          ? 'an integer from 0 to 65535'
          : type.max !== undefined
            ? `an integer from ${min} to ${max}`
            : `an integer >= ${min}`
      return { ok: false, reason: `must be ${range}${spec.nullable ? ' or null' : ''}, got ${describe(raw)}` }
    }
    case 'boolean': {
      if (typeof raw === 'boolean') return { ok: true, value: raw }
      if (fromString && typeof raw === 'string') {
        const s = raw.trim().toLowerCase()
        if (['true', '1', 'yes', 'on'].includes(s)) return { ok: true, value: true }
        if (['false', '0', 'no', 'off'].includes(s)) return { ok: true, value: false }
      }
      return { ok: false, reason: `must be true or false, got ${describe(raw)}` }
    }
    case 'string':
    case 'path':
      if (typeof raw === 'string' && raw.trim() !== '') return { ok: true, value: raw }
      return { ok: false, reason: `must be a non-empty string, got ${describe(raw)}` }
    case 'enum':
      if (typeof raw === 'string' && type.values.includes(raw)) return { ok: true, value: raw }
      return { ok: false, reason: `must be one of ${type.values.join(', ')}, got ${describe(raw)}` }
    case 'size':
      return withUnit(raw, SIZE_UNITS, 'size')
    case 'duration':
      return withUnit(raw, DURATION_UNITS, 'duration')
    case 'origins': {
      let value = raw
      if (fromString && typeof raw === 'string') {
        const s = raw.trim().toLowerCase()
        value = ['true', 'yes', 'on'].includes(s) ? true : ['false', 'no', 'off'].includes(s) ? false : raw
      }
      if (value === true || value === '*') return { ok: true, value: '*' }
      if (value === false) return { ok: true, value: false }
      const list = typeof value === 'string' ? value.split(',').map((o) => o.trim()) : value
      if (Array.isArray(list) && list.length > 0 && list.every((o) => typeof o === 'string' && o !== '')) {
        return { ok: true, value: list }
      }
      return { ok: false, reason: `must be true, false, * or a list of origins, got ${describe(raw)}` }
    }
    case 'addresses': {
      const list =
        typeof raw === 'string'
          ? raw
              .split(',')
              .map((a) => a.trim())
              .filter((a) => a !== '')
          : raw
      if (!Array.isArray(list) || !list.every((a) => typeof a === 'string')) {
        return { ok: false, reason: `must be a list of IP addresses or subnets, got ${describe(raw)}` }
      }
      const scratch = new BlockList()
      for (const entry of list) {
        try {
          addExempt(scratch, entry)
        } catch (error) {
          return { ok: false, reason: (error as Error).message }
        }
      }
      return { ok: true, value: list }
    }
    case 'object': {
      let value = raw
      if (fromString && typeof raw === 'string') {
        try {
          value = JSON.parse(raw)
        } catch {
          return { ok: false, reason: `must be a JSON object, got ${describe(raw)}` }
        }
      }
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) return { ok: true, value }
      return {
        ok: false,
        reason: `must be a mapping${fromString ? ' (JSON object)' : ''}, got ${describe(raw)}`,
      }
    }
  }
  return { ok: false, reason: 'unsupported type' }
}

/** Every known key path and section (`mqtt`, `mqtt.network`, `mqtt.network.port`), for hints. */
const KNOWN_PATHS: readonly string[] = [
  ...new Set(
    CONFIG_KEYS.flatMap(({ key }) => {
      const parts = key.split('.')
      return parts.map((_, i) => parts.slice(0, i + 1).join('.'))
    }),
  ),
]

/**
 * The known key (or section) an unknown one was probably meant to be, for "did you mean" hints: the
 * same path with one segment misspelled (case, a typo, two letters swapped), or the same last segments
 * one level off (`mqtt.port` → `mqtt.network.port`). Compared case-insensitively, so it also serves
 * environment variables, which are upper case.
 */
function suggest(key: string): string | undefined {
  const parts = key.toLowerCase().split('.')
  let best: string | undefined
  let bestScore = Number.POSITIVE_INFINITY
  for (const candidate of KNOWN_PATHS) {
    const known = candidate.toLowerCase().split('.')
    if (known.length !== parts.length) continue
    let score = 0
    for (let i = 0; i < parts.length && score !== Number.POSITIVE_INFINITY; i++) {
      const d = distance(parts[i]!, known[i]!)
      // a typo is at most a third of the segment (at least one edit)
      score = d <= Math.max(1, Math.floor(known[i]!.length / 3)) ? score + d : Number.POSITIVE_INFINITY
    }
    if (score < bestScore) {
      bestScore = score
      best = candidate
    }
  }
  if (best !== undefined) return best
  // one level off: a known key under the same first section that ends with the same segments
  const tail = parts.slice(1).join('.')
  const matches = CONFIG_KEYS.map((s) => s.key).filter((k) => {
    const lower = k.toLowerCase()
    return lower.startsWith(`${parts[0]}.`) && tail !== '' && lower.endsWith(`.${tail}`)
  })
  return matches.length === 1 ? matches[0] : undefined
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps cost 1. */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  )
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[i - 2]![j - 2]! + 1)
      d[i]![j] = v
    }
  }
  return d[a.length]![b.length]!
}

/** How the remark about an unknown `PROJ_*` variable starts (`proj-server config` prints those). */
export const UNKNOWN_ENV_NOTE = 'ignoring unknown environment variable'

/** The key an unknown `PROJ_*` variable was probably meant to set, as its variable name. */
function suggestEnv(name: string): string | undefined {
  const key = suggest(name.slice('PROJ_'.length).split('_').join('.'))
  return key !== undefined && specFor(key) ? envName(key) : undefined
}

function unknownKey(key: string): string {
  const hint = suggest(key)
  return hint ? `unknown key (did you mean ${hint}?)` : 'unknown key'
}

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
          issues.push({ key, source, reason: `must be a mapping, got ${describe(value)}` })
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
