import { isIPv6 } from 'node:net'

export interface AuthLimiterOptions {
  /** Failed password attempts allowed per username before its back-off starts (default 5; 0 = none). */
  maxUserFailures?: number
  /**
   * Failed attempts allowed per source address before its back-off starts (default 20; 0 = none). Higher
   * than per username: many legitimate clients may share an address (NAT, a proxy).
   */
  maxAddressFailures?: number
  /** The first back-off, doubled with every further failure (ms, default 1000). */
  baseDelayMs?: number
  /** The longest back-off (ms, default 60 000). */
  maxDelayMs?: number
  /** Failures are forgotten after this long without another one (ms, default 15 minutes). */
  forgetAfterMs?: number
  /** Most addresses, and most usernames, tracked at once; the least recently failed go first (default 50 000). */
  maxEntries?: number
  /** Milliseconds clock, for tests (default `Date.now`). */
  now?: () => number
}

interface Failures {
  count: number
  last: number
  blockedUntil: number
}

/**
 * Exponential back-off for failed password attempts, per source address and per username, so that
 * guessing costs the guesser time and the server no hashing: while an address or a username is backed
 * off, an attempt is refused before the password hash runs. The first failures are free (5 per username,
 * 20 per address by default); each further one doubles the wait (1 s, 2 s, 4 s, … up to `maxDelayMs`). A success clears the
 * username's failures (its owner got in), not the address's (one valid account must not reset the
 * guessing of another from the same address). IPv6 addresses count per /64, the block one host usually
 * owns. Both tables are bounded.
 *
 * Back-off per username lets anyone slow down logins to an account they can name (the usual trade-off of
 * account throttling); a password verified within the verification cache's lifetime still gets in.
 *
 * @example
 * const limiter = new AuthLimiter()
 * if (limiter.delay(address, username) > 0) refuse()
 * else if (await verify()) limiter.succeeded(username)
 * else limiter.failed(address, username)
 */
export class AuthLimiter {
  readonly #maxUserFailures: number
  readonly #maxAddressFailures: number
  readonly #baseDelayMs: number
  readonly #maxDelayMs: number
  readonly #forgetAfterMs: number
  readonly #maxEntries: number
  readonly #now: () => number
  readonly #sources = new Map<string, Failures>()
  readonly #usernames = new Map<string, Failures>()

  constructor(options: AuthLimiterOptions = {}) {
    this.#maxUserFailures = Math.max(0, options.maxUserFailures ?? 5)
    this.#maxAddressFailures = Math.max(0, options.maxAddressFailures ?? 20)
    this.#baseDelayMs = Math.max(1, options.baseDelayMs ?? 1000)
    this.#maxDelayMs = Math.max(this.#baseDelayMs, options.maxDelayMs ?? 60_000)
    this.#forgetAfterMs = Math.max(1, options.forgetAfterMs ?? 15 * 60_000)
    this.#maxEntries = Math.max(1, options.maxEntries ?? 50_000)
    this.#now = options.now ?? Date.now
  }

  /** Milliseconds until an attempt for this address and username may be verified; 0 = now. */
  delay(source: string | undefined, username: string): number {
    const now = this.#now()
    const until = Math.max(
      this.#blockedUntil(this.#sources, sourceKey(source), now),
      this.#blockedUntil(this.#usernames, username, now),
    )
    return Math.max(0, until - now)
  }

  failed(source: string | undefined, username: string): void {
    const now = this.#now()
    if (this.#maxAddressFailures > 0)
      this.#count(this.#sources, sourceKey(source), now, this.#maxAddressFailures)
    if (this.#maxUserFailures > 0) this.#count(this.#usernames, username, now, this.#maxUserFailures)
  }

  succeeded(username: string): void {
    this.#usernames.delete(username)
  }

  #blockedUntil(table: Map<string, Failures>, key: string | undefined, now: number): number {
    if (key === undefined) return 0
    const entry = table.get(key)
    if (entry === undefined) return 0
    if (now - entry.last > this.#forgetAfterMs) {
      table.delete(key)
      return 0
    }
    return entry.blockedUntil
  }

  #count(table: Map<string, Failures>, key: string | undefined, now: number, free: number): void {
    if (key === undefined) return
    let entry = table.get(key)
    if (entry !== undefined && now - entry.last > this.#forgetAfterMs) entry = undefined
    entry ??= { count: 0, last: now, blockedUntil: 0 }
    entry.count++
    entry.last = now
    const over = entry.count - free
    if (over > 0) {
      const wait = Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** Math.min(over - 1, 40))
      entry.blockedUntil = now + wait
    }
    // re-inserted last: the Map's order is least recently failed first
    table.delete(key)
    if (table.size >= this.#maxEntries) {
      const oldest = table.keys().next()
      if (!oldest.done) table.delete(oldest.value)
    }
    table.set(key, entry)
  }
}

/** The address a failure counts against: IPv4 (also IPv4-mapped IPv6) as is, IPv6 by its /64 prefix. */
export function sourceKey(source: string | undefined): string | undefined {
  if (source === undefined || source === '') return undefined
  if (source.startsWith('::ffff:') && source.includes('.')) return source.slice(7)
  if (!isIPv6(source)) return source
  source = source.split('%')[0]! // a zone id (fe80::1%eth0) names the interface, not the host
  const [head = '', tail = ''] = source.split('::')
  const left = head === '' ? [] : head.split(':')
  const right = tail === '' ? [] : tail.split(':')
  const groups = source.includes('::')
    ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
    : left
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':')}::/64`
}
