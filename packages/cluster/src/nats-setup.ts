import { readFile } from 'node:fs/promises'
import { DiscardPolicy, type JetStreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream'
import { type ConnectionOptions, credsAuthenticator } from '@nats-io/transport-node'
import type { ResolvedClusterOptions } from './options.js'

/** How a node connects to NATS and finds (or creates) the stream: the part of joining that needs no node. */

export async function connectionOptions(o: ResolvedClusterOptions): Promise<ConnectionOptions> {
  const { options } = o
  const result: ConnectionOptions = {
    servers: o.servers,
    name: `proj-${o.nodeName}`,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    pingInterval: 5000,
    timeout: 10_000,
  }
  if (options.user !== undefined) result.user = options.user
  if (options.password !== undefined) result.pass = options.password
  if (options.token !== undefined) result.token = options.token
  if (options.credentials !== undefined)
    result.authenticator = credsAuthenticator(await readFile(options.credentials))
  if (options.tls !== undefined) {
    result.tls = {}
    if (options.tls.caFile) result.tls.caFile = options.tls.caFile
    if (options.tls.certFile) result.tls.certFile = options.tls.certFile
    if (options.tls.keyFile) result.tls.keyFile = options.tls.keyFile
  }
  return result
}

export async function ensureStream(jsm: JetStreamManager, o: ResolvedClusterOptions): Promise<void> {
  const subjects = [`${o.prefix}.r.>`, `${o.prefix}.m.>`]
  try {
    const info = await jsm.streams.info(o.prefix)
    if (info.config.num_replicas !== o.replicas)
      o.log.warn(
        { stream: o.prefix, replicas: info.config.num_replicas, configured: o.replicas },
        'cluster: the stream exists with another replica count; using it as it is',
      )
    return
  } catch (error) {
    if (!isNotFound(error)) throw error
  }
  await jsm.streams.add({
    name: o.prefix,
    subjects,
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    num_replicas: o.replicas,
    max_age: o.maxAgeMs * 1_000_000,
    // NATS refuses a window longer than max_age (a short changeLog.retention)
    duplicate_window: Math.min(120_000, o.maxAgeMs) * 1_000_000,
  })
}

function isNotFound(error: unknown): boolean {
  const e = error as { code?: unknown; api_error?: { err_code?: number }; message?: string }
  return e?.api_error?.err_code === 10059 || /stream not found/i.test(String(e?.message))
}
