import { readFile } from 'node:fs/promises'
import type { TLSSocket, TlsOptions } from 'node:tls'
import type { ServerConfig } from './config-schema.js'

/** PEM bytes read once at start from the paths in `tls.*`. */
export interface TlsMaterial {
  cert: Buffer
  key: Buffer
  ca?: Buffer
}

/** Reads the TLS files named by the config, or returns null when no certificate is configured. */
export async function loadTlsMaterial(tls: ServerConfig['tls']): Promise<TlsMaterial | null> {
  if (!tls.certificate || !tls.privateKey) return null
  const [cert, key, ca] = await Promise.all([
    readFile(tls.certificate),
    readFile(tls.privateKey),
    tls.certificateAuthority ? readFile(tls.certificateAuthority) : undefined,
  ])
  return ca ? { cert, key, ca } : { cert, key }
}

/**
 * Options for `tls.createServer` / `https.createServer`. With `requestCert`, clients are asked for a
 * certificate signed by the configured CA; `required` makes a missing or invalid one fail the handshake,
 * otherwise such clients connect and simply have no certificate user.
 */
export function serverTlsOptions(
  material: TlsMaterial,
  mtls?: { requestCert: boolean; required: boolean },
): TlsOptions {
  const options: TlsOptions = { cert: material.cert, key: material.key }
  if (mtls?.requestCert) {
    options.requestCert = true
    options.rejectUnauthorized = mtls.required
    if (material.ca) options.ca = material.ca
  }
  return options
}

/**
 * Whether a socket is a TLS one, without loading node:tls (+1.7 MB of RSS with node:http and node:https,
 * which a server without TLS or HTTP listeners never needs): a TLSSocket says `encrypted`.
 */
export function isTlsSocket(socket: object): socket is TLSSocket {
  return (socket as { encrypted?: unknown }).encrypted === true
}

/**
 * The user a verified client certificate names: the subject field `field` (CN by default) of a
 * certificate the CA signed. Unverified or absent certificates name nobody.
 */
export function certificateUser(socket: TLSSocket, field: string | null): string | undefined {
  if (!field || !socket.authorized) return undefined
  const certificate = socket.getPeerCertificate()
  if (!certificate?.subject) return undefined
  const value = (certificate.subject as unknown as Record<string, string | string[] | undefined>)[field]
  const name = Array.isArray(value) ? value[0] : value
  return name && name.length > 0 ? name : undefined
}
