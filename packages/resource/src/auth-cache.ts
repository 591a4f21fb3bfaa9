import { createHmac, randomBytes } from 'node:crypto'

export interface AuthCacheOptions {
  /** How long a successful verification is reused (ms, default 60 000). */
  ttlMs?: number
  /** Most remembered (user, password) pairs; the oldest is dropped beyond it (default 10 000). */
  maxEntries?: number
  /** Milliseconds clock, for tests (default `Date.now`). */
  now?: () => number
}

interface Entry {
  /** The stored password hash the password was verified against. */
  hash: string
  expires: number
}

/**
 * Remembers successful password verifications for a short time, so HTTP Basic auth (credentials on every
 * request) does not run scrypt (~50 ms of CPU) per request. Passwords are never kept: an entry's key is the
 * username plus an HMAC-SHA-256 of the password under a random per-process key. An entry only counts while
 * the user's stored hash is still the one the password was verified against, so a changed password (also
 * one changed by another process on the same store) or a deleted user stops working at once; the caller
 * also drops a user's entries when it changes the password, role or deletes the user.
 *
 * @example
 * const cache = new AuthCache()
 * if (!cache.has(name, password, stored.password) && (await verifyPassword(password, stored.password)))
 *   cache.remember(name, password, stored.password)
 */
export class AuthCache {
  readonly #key = randomBytes(32)
  readonly #entries = new Map<string, Entry>()
  readonly #ttlMs: number
  readonly #maxEntries: number
  readonly #now: () => number

  constructor(options: AuthCacheOptions = {}) {
    this.#ttlMs = options.ttlMs ?? 60_000
    this.#maxEntries = Math.max(1, options.maxEntries ?? 10_000)
    this.#now = options.now ?? Date.now
  }

  get size(): number {
    return this.#entries.size
  }

  /** True when `password` was verified against `storedHash` (the user's current hash) within the TTL. */
  has(username: string, password: string, storedHash: string): boolean {
    if (this.#ttlMs <= 0) return false
    const key = this.#id(username, password)
    const entry = this.#entries.get(key)
    if (entry === undefined) return false
    if (entry.hash === storedHash && entry.expires > this.#now()) return true
    this.#entries.delete(key)
    return false
  }

  remember(username: string, password: string, storedHash: string): void {
    if (this.#ttlMs <= 0) return
    const key = this.#id(username, password)
    this.#entries.delete(key) // re-inserted last: the Map's order is the eviction order
    if (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next()
      if (!oldest.done) this.#entries.delete(oldest.value)
    }
    this.#entries.set(key, { hash: storedHash, expires: this.#now() + this.#ttlMs })
  }

  /** Drops every entry of a user (password, role change, deletion). */
  forget(username: string): void {
    const prefix = `${username}\u0000`
    for (const key of this.#entries.keys()) if (key.startsWith(prefix)) this.#entries.delete(key)
  }

  clear(): void {
    this.#entries.clear()
  }

  #id(username: string, password: string): string {
    return `${username}\u0000${createHmac('sha256', this.#key).update(password).digest('base64url')}`
  }
}
