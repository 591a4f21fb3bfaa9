/**
 * How a password is kept: an scrypt hash checked at login, and the SCRAM-SHA-256 credential (RFC 5802,
 * RFC 7677) that enhanced authentication verifies proofs against, both made when a password is set.
 */
import { createHash, createHmac, pbkdf2, randomBytes, scrypt, timingSafeEqual } from 'node:crypto'
import type { ScramCredential } from './types.js'

/** A SCRAM-SHA-256 credential as a user record stores it (base64url parts). */
export interface StoredScram {
  salt: string
  iterations: number
  storedKey: string
  serverKey: string
}

/**
 * PBKDF2-HMAC-SHA-256 iterations of new SCRAM credentials. RFC 7677 section 4 asks for at least 4096; the
 * OWASP Password Storage Cheat Sheet (2023, https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html#pbkdf2)
 * recommends 600 000 for PBKDF2-HMAC-SHA-256, because a stolen StoredKey can be attacked offline at the
 * cost of one PBKDF2 run per guess. A credential keeps the count it was made with, so raising it only
 * affects passwords set afterwards.
 */
export const DEFAULT_SCRAM_ITERATIONS = 600_000
/** The floor of RFC 7677 section 4. */
export const MIN_SCRAM_ITERATIONS = 4096

const SCRYPT = { N: 16384, r: 8, p: 1, keyLength: 32 }

function scryptAsync(
  password: string,
  salt: Buffer,
  N: number,
  r: number,
  p: number,
  keyLength: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keyLength, { N, r, p, maxmem: 256 * N * r }, (error, key) =>
      error ? reject(error) : resolve(key),
    )
  })
}

/** The smallest scrypt cost accepted (`auth.scryptCost`); tests use it, servers keep the default. */
const MIN_SCRYPT_COST = 1024

/** The scrypt cost to hash with for `auth.scryptCost`: a power of two at or above the floor (scrypt refuses others). */
export function scryptCost(requested: number | undefined): number {
  const cost = requested ?? SCRYPT.N
  return 2 ** Math.max(Math.log2(MIN_SCRYPT_COST), Math.floor(Math.log2(Math.max(1, cost))))
}

/** scrypt-hashes a password with cost `N` (a power of two, default 16384); the cost is stored with the hash. */
export async function hashPassword(password: string, N: number = SCRYPT.N): Promise<string> {
  const salt = randomBytes(16)
  const { r, p, keyLength } = SCRYPT
  const hash = await scryptAsync(password, salt, N, r, p, keyLength)
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64url')}$${hash.toString('base64url')}`
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$')
  if (scheme !== 'scrypt' || !salt || !hash) return false
  const expected = Buffer.from(hash, 'base64url')
  const actual = await scryptAsync(
    password,
    Buffer.from(salt, 'base64url'),
    Number(n),
    Number(r),
    Number(p),
    expected.length,
  )
  return actual.length === expected.length && timingSafeEqual(actual, expected)
}

/**
 * The SCRAM-SHA-256 credential of a password (RFC 5802 section 3): SaltedPassword = Hi(password, salt, i)
 * (PBKDF2-HMAC-SHA-256), StoredKey = H(HMAC(SaltedPassword, "Client Key")), ServerKey =
 * HMAC(SaltedPassword, "Server Key"). The password is normalized with NFKC (SASLprep's normalization step).
 *
 * @example
 * const cred = await scramCredential('secret')
 * // cred.storedKey verifies a client proof, cred.serverKey signs the server's final message
 */
export async function scramCredential(
  password: string,
  options: { salt?: Uint8Array; iterations?: number } = {},
): Promise<ScramCredential> {
  const salt = Buffer.from(options.salt ?? randomBytes(16))
  const iterations = options.iterations ?? DEFAULT_SCRAM_ITERATIONS
  const salted = await new Promise<Buffer>((resolve, reject) =>
    pbkdf2(password.normalize('NFKC'), salt, iterations, 32, 'sha256', (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  )
  const clientKey = createHmac('sha256', salted).update('Client Key').digest()
  return {
    mechanism: 'SCRAM-SHA-256',
    salt,
    iterations,
    storedKey: createHash('sha256').update(clientKey).digest(),
    serverKey: createHmac('sha256', salted).update('Server Key').digest(),
  }
}

/** The stored form of a password's SCRAM-SHA-256 credential. */
export async function storedScram(password: string, iterations: number): Promise<StoredScram> {
  const c = await scramCredential(password, { iterations })
  return {
    salt: Buffer.from(c.salt).toString('base64url'),
    iterations: c.iterations,
    storedKey: Buffer.from(c.storedKey).toString('base64url'),
    serverKey: Buffer.from(c.serverKey).toString('base64url'),
  }
}
