/**
 * SIGHUP: what a running server can take from a new configuration without dropping a connection — the
 * TLS certificate, key and CA (for new handshakes), the roles and the anonymous settings (for later
 * requests, CONNECTs and subscriptions). Everything is read and checked first and applied only when all
 * of it is good, so a broken reload changes nothing; other changed keys are named as needing a restart.
 */
import type { Server as TlsServer } from 'node:tls'
import type { ResourceRuntime, RoleDefinition } from '@proj/resource'
import type { ServerConfig } from './config-schema.js'
import { ConfigError } from './errors.js'
import { loadTlsMaterial, serverTlsOptions } from './tls.js'

/** A listener that terminates TLS, with the client-certificate policy it was started with. */
export interface SecureListener {
  server: TlsServer
  requestCert: boolean
  required: boolean
}

/** Keys a reload applies; any other key that changed needs a restart. */
const RELOADED = /^(tls\.|roles$|roles\.|anonymous\.)/

export interface ReloadOutcome {
  /** What changed and now applies: `tls`, `roles`, `anonymous`. */
  applied: string[]
  /** Changed keys that only a restart applies. */
  restartNeeded: string[]
}

export async function applyReload(
  current: ServerConfig,
  next: ServerConfig,
  parts: { runtime: ResourceRuntime; secure: readonly SecureListener[]; roles: RoleDefinition[] },
): Promise<ReloadOutcome> {
  const before = flatten(current)
  const after = flatten(next)
  const changed = [...new Set([...before.keys(), ...after.keys()])].filter(
    (k) => JSON.stringify(before.get(k)) !== JSON.stringify(after.get(k)),
  )
  // 1. read and check everything
  let contexts: { listener: SecureListener; options: ReturnType<typeof serverTlsOptions> }[] = []
  if (parts.secure.length > 0) {
    const material = await loadTlsMaterial(next.tls).catch((error: NodeJS.ErrnoException) => {
      throw new ConfigError([
        {
          key: 'tls',
          source: 'SIGHUP',
          reason: `cannot read the TLS files (${error.code ?? error.message})`,
        },
      ])
    })
    if (material === null)
      throw new ConfigError([
        {
          key: 'tls.certificate',
          source: 'SIGHUP',
          reason: 'TLS listeners are running: a certificate is required',
        },
      ])
    contexts = parts.secure.map((listener) => ({
      listener,
      options: serverTlsOptions(material, { requestCert: listener.requestCert, required: listener.required }),
    }))
    // TLS listeners are running, so node:tls is loaded already
    const { createSecureContext } = await import('node:tls')
    for (const { options } of contexts) {
      try {
        createSecureContext(options) // a key that does not match its certificate fails here, not at a handshake
      } catch (error) {
        throw new ConfigError([
          {
            key: 'tls',
            source: 'SIGHUP',
            reason: `unusable certificate or key: ${(error as Error).message}`,
          },
        ])
      }
    }
  }
  // 2. apply
  for (const { listener, options } of contexts) listener.server.setSecureContext(options)
  parts.runtime.reconfigure({
    roles: parts.roles,
    allowAnonymous: next.anonymous.enabled,
    anonymousRole: next.anonymous.role,
  })
  const applied = ['tls', 'roles', 'anonymous'].filter((area) =>
    changed.some((k) => k === area || k.startsWith(`${area}.`)),
  )
  const restartNeeded = changed.filter((k) => !RELOADED.test(k))
  return { applied, restartNeeded }
}

function flatten(config: unknown, prefix = '', out = new Map<string, unknown>()): Map<string, unknown> {
  for (const [key, value] of Object.entries(config as Record<string, unknown>)) {
    const path = prefix ? `${prefix}.${key}` : key
    // roles are compared whole: their shape is the user's, not the schema's
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && path !== 'roles')
      flatten(value, path, out)
    else out.set(path, value)
  }
  return out
}
