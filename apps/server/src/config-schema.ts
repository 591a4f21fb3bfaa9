/**
 * Every configuration key the server knows, in one table: its type, default, environment variable,
 * CLI flag and meaning. The loader, the validator, the CLI flags and the README reference table are all
 * derived from this list, so a key cannot exist in one place and be missing in another.
 *
 * Naming rules (deterministic, documented in the README):
 * - environment variable: `PROJ_` + each path segment upper-cased as is, joined by `_`
 *   (`mqtt.network.securePort` → `PROJ_MQTT_NETWORK_SECUREPORT`; camelCase is not split);
 * - CLI flag: `--` + each segment in kebab-case, joined by `-`
 *   (`mqtt.network.securePort` → `--mqtt-network-secure-port`, `mqtt.mTLS.user` → `--mqtt-mtls-user`),
 *   plus the short aliases listed below.
 */

import type { KeySpec } from './config-key-spec.js'
import { CLUSTER_KEYS } from './config-keys-cluster.js'
import { MQTT_KEYS } from './config-keys-mqtt.js'

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

export const CONFIG_KEYS: readonly KeySpec[] = [
  // HTTP: REST, WebSocket, SSE and MQTT over WebSocket
  {
    key: 'http.port',
    type: { kind: 'port' },
    nullable: true,
    default: 9926,
    description:
      'HTTP port (REST, WebSocket, SSE, MQTT over WebSocket); null disables it; 0 picks a free port',
  },
  {
    key: 'http.securePort',
    type: { kind: 'port' },
    nullable: true,
    default: null,
    description: 'HTTPS port (same services over TLS); needs tls.certificate and tls.privateKey',
    aliases: ['https-port'],
  },
  {
    key: 'http.host',
    type: { kind: 'string' },
    nullable: true,
    default: null,
    description: 'Interface the HTTP and HTTPS listeners bind to; null = all interfaces',
  },
  {
    key: 'http.cors',
    type: { kind: 'origins' },
    default: '*',
    description:
      'CORS: `*` or true = any origin, false = no CORS headers, or a list of allowed origins (comma-separated in env/flags)',
  },
  {
    key: 'http.streamOrigins',
    type: { kind: 'origins' },
    nullable: true,
    default: null,
    description:
      "Origins besides the server's own whose pages may open WebSockets (records, MQTT) and event streams sent with cookies or Basic credentials; others get 403. null = the http.cors list (none when http.cors is `*`); `*` or true = any origin; false = same origin only",
  },
  {
    key: 'http.maxBodySize',
    type: { kind: 'size' },
    default: 10 * 1024 * 1024,
    description: 'Largest REST request body in bytes (accepts 512kb, 10mb, ...); larger bodies get 413',
  },
  // MQTT
  ...MQTT_KEYS,
  // Connection admission, before TLS and before anything is allocated for a connection
  {
    key: 'connections.maxPerAddress',
    type: { kind: 'integer', min: 0 },
    default: 1000,
    description:
      'Open connections per client address (IPv6: per /64) on all listeners together (MQTT, MQTTS, HTTP, HTTPS); more are reset at accept; 0 = unlimited',
  },
  {
    key: 'connections.ratePerAddress',
    type: { kind: 'integer', min: 0 },
    default: 100,
    description:
      'New connections per second per client address (a token bucket of one second); faster ones are reset at accept, before any TLS handshake; 0 = unlimited',
  },
  {
    key: 'connections.exempt',
    type: { kind: 'addresses' },
    default: ['127.0.0.0/8', '::1'],
    description:
      'Addresses and subnets the per-address limits do not apply to (comma-separated in env/flags; an empty list exempts none). Loopback by default: local tools, benchmarks and a reverse proxy on the same machine',
  },
  // Identity
  {
    key: 'anonymous.enabled',
    type: { kind: 'boolean' },
    default: false,
    description:
      'Let clients without credentials in, with the role anonymous.role (off by default, like Mosquitto 2)',
    aliases: ['anonymous'],
  },
  {
    key: 'anonymous.role',
    type: { kind: 'string' },
    default: 'anonymous',
    description: 'Role given to anonymous clients; define its permissions and topic rules under roles',
  },
  {
    key: 'roles',
    type: { kind: 'object' },
    default: {},
    description: 'Role definitions (permissions per table and topic rules), passed to the resource runtime',
  },
  // Authentication: password cost, back-off after failures, verification cache
  {
    key: 'auth.scramIterations',
    type: { kind: 'integer', min: 4096 },
    default: 600_000,
    description:
      'PBKDF2-HMAC-SHA-256 iterations of SCRAM-SHA-256 credentials made from now on (OWASP 2023: 600000; RFC 7677 minimum 4096); existing credentials keep theirs',
  },
  {
    key: 'auth.scryptCost',
    type: { kind: 'integer', min: 1024 },
    default: 16384,
    description:
      'scrypt cost (N, rounded down to a power of two) of passwords hashed from now on; existing hashes keep theirs. Lower only where hashing time matters more than the cost of guessing (tests)',
  },
  {
    key: 'auth.backoff.maxFailuresPerUser',
    type: { kind: 'integer', min: 0 },
    default: 5,
    description:
      'Failed password attempts per username before exponential back-off (1s, 2s, 4s, ...); 0 = no back-off per username',
  },
  {
    key: 'auth.backoff.maxFailuresPerAddress',
    type: { kind: 'integer', min: 0 },
    default: 20,
    description:
      'Failed password attempts per client address (IPv6: per /64) before exponential back-off; 0 = no back-off per address',
  },
  {
    key: 'auth.backoff.maxDelay',
    type: { kind: 'duration' },
    default: 60_000,
    description:
      'Longest back-off after failed passwords; meanwhile attempts are refused unhashed (MQTT 0x89 / 3.1.1 0x03, HTTP 429 with Retry-After)',
  },
  {
    key: 'auth.cacheTtl',
    type: { kind: 'duration' },
    default: 60_000,
    description:
      'How long a successful password check is reused (HTTP Basic sends it with every request); 0 = never',
  },
  // TLS
  {
    key: 'tls.certificate',
    type: { kind: 'path' },
    nullable: true,
    default: null,
    description: 'PEM certificate (chain) file for MQTTS and HTTPS, relative to the root',
  },
  {
    key: 'tls.privateKey',
    type: { kind: 'path' },
    nullable: true,
    default: null,
    description: 'PEM private key file for tls.certificate, relative to the root',
  },
  {
    key: 'tls.certificateAuthority',
    type: { kind: 'path' },
    nullable: true,
    default: null,
    description: 'PEM CA file that signs client certificates (mTLS), relative to the root',
  },
  // Storage, applications, logging
  {
    key: 'storage.path',
    type: { kind: 'path' },
    default: 'data',
    description: 'LMDB folder, relative to the root',
  },
  {
    key: 'applications.path',
    type: { kind: 'path' },
    default: 'applications',
    description:
      'Folder whose sub-folders are applications (schema.graphql, resources.js); when missing, the built-in default app (a Dog table) is used',
  },
  {
    key: 'changeLog.retention',
    type: { kind: 'duration' },
    default: 7 * 24 * 3600 * 1000,
    description:
      'How long change-log events are kept for session catch-up and SSE resume (ms, or 30m, 24h, 7d)',
  },
  {
    key: 'changeLog.maxEvents',
    type: { kind: 'integer', min: 1 },
    nullable: true,
    default: null,
    description: 'Also cap the change log at this many events; null = only the retention age applies',
  },
  {
    key: 'changeLog.compactionInterval',
    type: { kind: 'duration' },
    default: 60_000,
    description:
      'How often old change-log events (past retention or maxEvents) are dropped; 0 = never (ms, or 30s, 5m)',
  },
  {
    key: 'logging.level',
    type: { kind: 'enum', values: LOG_LEVELS },
    default: 'info',
    description: 'Log level: fatal, error, warn, info, debug, trace or silent',
    aliases: ['log-level'],
  },
  {
    key: 'logging.format',
    type: { kind: 'enum', values: ['auto', 'json', 'pretty'] },
    default: 'auto',
    description: 'json = one pino JSON object per line; pretty = readable lines; auto = pretty on a terminal',
  },
  // Monitoring and the Studio
  {
    key: 'metrics.enabled',
    type: { kind: 'boolean' },
    default: true,
    description: 'Serve Prometheus metrics at `GET /metrics` (JSON with `Accept: application/json`)',
  },
  {
    key: 'metrics.access',
    type: { kind: 'string' },
    default: 'admin',
    description:
      'Who may read /metrics: `open` = anyone without credentials; else a role name, whose users may (super users always may)',
  },
  {
    key: 'sys.interval',
    type: { kind: 'integer', min: 0, max: 86_400 },
    default: 10,
    description:
      'Seconds between refreshes of the `$SYS/broker/...` topics (named as Mosquitto names them); 0 = no `$SYS` topics',
  },
  {
    key: 'studio.enabled',
    type: { kind: 'boolean' },
    default: true,
    description:
      'Serve the Studio (the web console) at /studio/ (GET / redirects there) and its admin API under /_admin/',
  },
  // Cluster (NATS JetStream); on when cluster.nats.servers is set
  ...CLUSTER_KEYS,
  {
    key: 'shutdown.timeout',
    type: { kind: 'duration' },
    default: 10_000,
    description:
      'On SIGTERM/SIGINT, how long to wait for connections to finish before closing them (ms or 10s)',
  },
]

const BY_KEY = new Map(CONFIG_KEYS.map((spec) => [spec.key, spec]))

export function specFor(key: string): KeySpec | undefined {
  return BY_KEY.get(key)
}

/** `mqtt.network.securePort` → `PROJ_MQTT_NETWORK_SECUREPORT`. */
export function envName(key: string): string {
  return `PROJ_${key
    .split('.')
    .map((s) => s.toUpperCase())
    .join('_')}`
}

/**
 * `mqtt.network.securePort` → `mqtt-network-secure-port`: a capital followed by a lower-case letter starts
 * a word, so acronyms stay whole (`mqtt.mTLS.user` → `mqtt-mtls-user`).
 */
export function flagName(key: string): string {
  return key
    .split('.')
    .map((s) => s.replace(/([a-z0-9])(?=[A-Z][a-z])/g, '$1-').toLowerCase())
    .join('-')
}

/** Object keys that accept a boolean shorthand: `mqtt.mTLS: true` = `mqtt.mTLS.enabled: true`. */
export const BOOLEAN_SHORTHANDS: Readonly<Record<string, string>> = { 'mqtt.mTLS': 'mqtt.mTLS.enabled' }

/** The effective configuration, fully defaulted and validated. Paths are absolute. */
export interface ServerConfig {
  http: {
    port: number | null
    securePort: number | null
    host: string | null
    cors: false | '*' | string[]
    streamOrigins: null | false | '*' | string[]
    maxBodySize: number
  }
  mqtt: {
    network: { port: number | null; securePort: number | null; host: string | null }
    webSocket: boolean
    mTLS: { enabled: boolean; user: string | null; required: boolean }
    requireAuthentication: boolean
    maxKeepAlive: number
    maxPacketSize: number
    receiveMaximum: number
    maxInflight: number
    maxQueued: number
    maxConnections: number
    connectTimeout: number
    maxConnectionsPerUser: number
    rejectUnclaimedTopics: boolean
    refusedPublish: 'acknowledge' | 'disconnect'
  }
  connections: { maxPerAddress: number; ratePerAddress: number; exempt: string[] }
  anonymous: { enabled: boolean; role: string }
  auth: {
    scramIterations: number
    scryptCost: number
    backoff: { maxFailuresPerUser: number; maxFailuresPerAddress: number; maxDelay: number }
    cacheTtl: number
  }
  roles: Record<string, unknown>
  tls: { certificate: string | null; privateKey: string | null; certificateAuthority: string | null }
  storage: { path: string }
  applications: { path: string }
  changeLog: { retention: number; maxEvents: number | null; compactionInterval: number }
  logging: { level: (typeof LOG_LEVELS)[number]; format: 'auto' | 'json' | 'pretty' }
  metrics: { enabled: boolean; access: string }
  sys: { interval: number }
  studio: { enabled: boolean }
  cluster: {
    nodeName: string | null
    replicas: number
    ack: 'replicated' | 'local'
    prefix: string
    writeTimeout: number
    applyTimeout: number
    outboxLimit: number
    catchUpTimeout: number
    nats: {
      servers: string | null
      user: string | null
      password: string | null
      token: string | null
      credentials: string | null
      tls: { ca: string | null; certificate: string | null; privateKey: string | null }
    }
  }
  shutdown: { timeout: number }
}
