import { createHash } from 'node:crypto'
import { hostname } from 'node:os'
import { checkPrefix } from './subjects.js'

/** How a write is acknowledged (see README "Acknowledgement"). */
export type AckMode = 'replicated' | 'local'

/** Options of a cluster node; apps/server maps its `cluster.*` config keys onto these. */
export interface ClusterOptions {
  /** NATS URLs (`nats://host:4222`, `tls://…`). */
  servers: string[]
  /** Unique per node; its hash is the storage node id. Default: the host name. */
  nodeName?: string
  /** Replicas of the stream and KV buckets (default 3; 1 for a one-server NATS). */
  replicas?: number
  /** Default `replicated`. */
  ack?: AckMode
  /** Stream name, subject prefix and KV bucket prefix (default `proj`). */
  prefix?: string
  /** How long a write retries while JetStream has no quorum, ms (default 10 000). */
  writeTimeoutMs?: number
  /**
   * How long a write that JetStream acknowledged waits for this node to apply it, ms (default 30 000);
   * then it fails with `STORAGE_UNAVAILABLE` (HTTP 503, MQTT 5 0x80; outcome unknown).
   */
  applyTimeoutMs?: number
  /**
   * How long joining may take while JetStream is not answering yet (a meta leader being elected right
   * after NATS starts), ms (default 30 000); requests are retried until then.
   */
  joinTimeoutMs?: number
  /**
   * `ack: local`: most transactions the outbox holds (while NATS or a quorum is unreachable); a write
   * beyond is refused like one that found no quorum (`STORAGE_UNAVAILABLE`). Default 100 000; 0: no bound.
   */
  outboxLimit?: number
  /** How long the stream keeps transactions, ms (a node down longer cannot catch up). Default 7 days. */
  maxAgeMs?: number
  /**
   * QoS 0 relay: how long after a batch of messages went to the other nodes the next one waits, so that
   * messages arriving meanwhile share it, ms (default 1; 0: each event-loop turn's messages go at once).
   */
  relayHoldMs?: number
  user?: string
  password?: string
  token?: string
  /** Path of a NATS `.creds` file (JWT and nkey seed). */
  credentials?: string
  /** TLS to NATS: PEM files (a CA to trust; a client certificate and key for mutual TLS). */
  tls?: { caFile?: string; certFile?: string; keyFile?: string }
  /** Told about connection changes, catch-up and failures (default: silent). */
  log?: ClusterLog
}

/** The logger shape the cluster writes to (pino-compatible). */
export interface ClusterLog {
  info(fields: Record<string, unknown>, message: string): void
  warn(fields: Record<string, unknown>, message: string): void
  error(fields: Record<string, unknown>, message: string): void
}

export interface ResolvedClusterOptions extends Required<Pick<ClusterOptions, 'servers' | 'ack'>> {
  nodeName: string
  nodeId: number
  replicas: number
  prefix: string
  writeTimeoutMs: number
  joinTimeoutMs: number
  applyTimeoutMs: number
  outboxLimit: number
  maxAgeMs: number
  options: ClusterOptions
  log: ClusterLog
}

const silent: ClusterLog = { info() {}, warn() {}, error() {} }

/** The storage node id (uint32, never 0) of a node name: stable, so ties resolve alike everywhere. */
export function nodeIdOf(nodeName: string): number {
  const id = createHash('sha256').update(nodeName).digest().readUInt32BE(0)
  return id === 0 ? 1 : id
}

/** Fills defaults and checks every option; throws TypeError naming the bad one. */
export function resolveOptions(options: ClusterOptions): ResolvedClusterOptions {
  if (!Array.isArray(options.servers) || options.servers.length === 0)
    throw new TypeError('cluster: servers must list at least one NATS URL')
  const nodeName = options.nodeName ?? hostname()
  if (typeof nodeName !== 'string' || nodeName === '' || nodeName.length > 128)
    throw new TypeError('cluster: nodeName must be a non-empty string of at most 128 characters')
  const replicas = options.replicas ?? 3
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5)
    throw new TypeError('cluster: replicas must be an integer from 1 to 5')
  const ack = options.ack ?? 'replicated'
  if (ack !== 'replicated' && ack !== 'local') throw new TypeError('cluster: ack must be replicated or local')
  const writeTimeoutMs = options.writeTimeoutMs ?? 10_000
  if (!(writeTimeoutMs > 0)) throw new TypeError('cluster: writeTimeoutMs must be positive')
  const joinTimeoutMs = options.joinTimeoutMs ?? 30_000
  if (!(joinTimeoutMs > 0)) throw new TypeError('cluster: joinTimeoutMs must be positive')
  const applyTimeoutMs = options.applyTimeoutMs ?? 30_000
  if (!(applyTimeoutMs > 0)) throw new TypeError('cluster: applyTimeoutMs must be positive')
  const outboxLimit = options.outboxLimit ?? 100_000
  if (!Number.isInteger(outboxLimit) || outboxLimit < 0)
    throw new TypeError('cluster: outboxLimit must be a non-negative integer')
  return {
    servers: options.servers,
    nodeName,
    nodeId: nodeIdOf(nodeName),
    replicas,
    ack,
    prefix: checkPrefix(options.prefix ?? 'proj'),
    writeTimeoutMs,
    joinTimeoutMs,
    applyTimeoutMs,
    outboxLimit,
    maxAgeMs: options.maxAgeMs ?? 7 * 24 * 3600_000,
    options,
    log: options.log ?? silent,
  }
}
