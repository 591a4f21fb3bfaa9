import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { AuthCache } from './auth-cache.js'
import { AuthLimiter } from './auth-limiter.js'
import { ResourceError } from './errors.js'
import {
  DEFAULT_SCRAM_ITERATIONS,
  hashPassword,
  MIN_SCRAM_ITERATIONS,
  type StoredScram,
  scryptCost,
  storedScram,
  verifyPassword,
} from './passwords.js'
import type { Permissions } from './permissions.js'
import type { TableStateStore } from './state-store.js'
import { toResourceError } from './storage-writes.js'
import type { ScramCredential, User, UserAdmin } from './types.js'
import { UserChangeFeed, type UserChangeListener, type UserFingerprint } from './user-changes.js'

/** How a user is persisted (state store `__users`). */
interface StoredUser {
  username: string
  /** Random, made when the user is added (absent for users added before it existed). */
  id?: string
  /** Random, made anew with each password: bearer tokens carry it, so a new password revokes them. */
  generation?: string
  role: string
  superUser: boolean
  /** `scrypt$N$r$p$salt$hash`, base64url parts. */
  password: string
  /** SCRAM-SHA-256 credential (base64url parts); absent for passwords set before it existed. */
  scram?: StoredScram
}

const DEFAULT_TOKEN_TTL_MS = 60 * 60 * 1000

function publicUser(stored: StoredUser): User {
  return { username: stored.username, role: stored.role, superUser: stored.superUser }
}

/**
 * 1 to 128 characters, none of them white space, control characters, `:` (it ends the name in HTTP
 * Basic credentials) or `/ + # %` (a topic rule's `%u` would change shape or name another user).
 */
const USERNAME = /^[^\s\p{Cc}:/+#%]{1,128}$/u

/** Password checking and credentials: cost, caching, back-off and reporting of failures. */
export interface AuthOptions {
  /** PBKDF2 iterations of SCRAM credentials made from now on (default 600 000, at least 4096). */
  scramIterations?: number
  /**
   * scrypt cost (N, a power of two) of passwords hashed from now on (default 16384, at least 1024); each hash
   * keeps the cost it was made with. Lower only where hashing time matters more than guessing cost (tests).
   */
  scryptCost?: number
  /** Failed password attempts per username before back-off starts (default 5; 0 = no back-off per username). */
  maxFailuresPerUser?: number
  /** Failed password attempts per source address before back-off starts (default 20; 0 = none per address). */
  maxFailuresPerAddress?: number
  /** The longest back-off after failed attempts (ms, default 60 000); it starts at 1 s and doubles. */
  maxBackoffMs?: number
  /** How long a successful password verification is reused (ms, default 60 000; 0 = never). */
  cacheTtlMs?: number
  /** Told about each failed password attempt, e.g. to log it with its source address. */
  onFailure?: (failure: AuthFailure) => void
  /** How often changes to users made by other processes (the CLI) are looked for (ms, default 1000). */
  userPollMs?: number
}

/** A failed password attempt. `retryAfterMs` is set when it was refused for back-off (nothing was hashed). */
export interface AuthFailure {
  username: string
  /** The client's address, as the transport gave it. */
  source: string | undefined
  reason: 'unknown user' | 'wrong password' | 'backed off'
  retryAfterMs?: number
}

/** Users, passwords and bearer tokens, persisted in state stores. */
export class Users implements UserAdmin {
  readonly #store: TableStateStore<StoredUser>
  readonly #system: TableStateStore<unknown>
  readonly #permissions: Permissions
  readonly #scramIterations: number
  readonly #scryptCost: number
  readonly #limiter: AuthLimiter
  readonly #onFailure: ((failure: AuthFailure) => void) | undefined
  readonly #changes: UserChangeFeed
  #secret: Promise<Buffer> | undefined
  /** A hash to compare against when the user does not exist, so timing does not reveal usernames. */
  #dummy: Promise<string> | undefined
  /** Recent successful verifications (Basic auth sends the password with every HTTP request). */
  readonly authCache: AuthCache

  constructor(
    store: TableStateStore<StoredUser>,
    system: TableStateStore<unknown>,
    permissions: Permissions,
    options: AuthOptions = {},
    onError?: (error: unknown) => void,
  ) {
    this.#store = store
    this.#system = system
    this.#permissions = permissions
    this.#scramIterations = Math.max(
      MIN_SCRAM_ITERATIONS,
      options.scramIterations ?? DEFAULT_SCRAM_ITERATIONS,
    )
    this.#scryptCost = scryptCost(options.scryptCost)
    this.#limiter = new AuthLimiter({
      ...(options.maxFailuresPerUser !== undefined ? { maxUserFailures: options.maxFailuresPerUser } : {}),
      ...(options.maxFailuresPerAddress !== undefined
        ? { maxAddressFailures: options.maxFailuresPerAddress }
        : {}),
      ...(options.maxBackoffMs !== undefined ? { maxDelayMs: options.maxBackoffMs } : {}),
    })
    this.authCache = new AuthCache(options.cacheTtlMs !== undefined ? { ttlMs: options.cacheTtlMs } : {})
    this.#onFailure = options.onFailure
    this.#changes = new UserChangeFeed({
      read: () => this.#fingerprints(),
      revision: () => system.get(REVISION_KEY),
      writeRevision: (revision) => system.put(REVISION_KEY, revision),
      ...(options.userPollMs !== undefined ? { pollMs: options.userPollMs } : {}),
      onError: onError ?? ((error) => console.error('@proj/resource:', error)),
    })
  }

  /**
   * Tells `listener` about every user deleted, given another role, or given a new password, by this
   * process or another one on the same store (noticed within `userPollMs`). Returns the unsubscribe.
   */
  onChange(listener: UserChangeListener): () => void {
    return this.#changes.on(listener)
  }

  /** Stops watching for changes. */
  close(): void {
    this.#changes.close()
  }

  #fingerprints(): Map<string, UserFingerprint> {
    const out = new Map<string, UserFingerprint>()
    for (const { key, value } of this.#store.entries()) {
      out.set(String(key), {
        id: value.id ?? '',
        role: value.role,
        superUser: value.superUser,
        generation: value.generation ?? '',
      })
    }
    return out
  }

  async add(
    username: string,
    password: string,
    options: { role?: string; superUser?: boolean } = {},
  ): Promise<User> {
    if (typeof username !== 'string' || !USERNAME.test(username))
      throw new ResourceError(
        'INVALID',
        `invalid username ${JSON.stringify(username)}: 1 to 128 characters, without white space, control characters or any of : / + # %`,
      )
    if (this.#store.get(username)) throw new ResourceError('CONFLICT', `user ${username} already exists`)
    checkPassword(password)
    const role = options.role ?? (options.superUser ? 'admin' : 'user')
    if (!this.#permissions.hasRole(role)) throw new ResourceError('INVALID', `unknown role ${role}`)
    const [hash, scram] = await Promise.all([
      hashPassword(password, this.#scryptCost),
      storedScram(password, this.#scramIterations),
    ])
    const stored: StoredUser = {
      username,
      id: randomId(),
      generation: randomId(),
      role,
      superUser: options.superUser === true,
      password: hash,
      scram,
    }
    // created only if absent when the write applies: of two concurrent adds (two requests here, or the
    // first starts of several cluster nodes) one fails, rather than replace the other's user (its `id`
    // changes, which counts as a deletion: its connections and sessions would be ended)
    try {
      await this.#store.table.put(username, stored, { ifVersion: 0 })
    } catch (error) {
      if ((error as { code?: unknown })?.code === 'STORAGE_CONFLICT')
        throw new ResourceError('CONFLICT', `user ${username} already exists`, { cause: error })
      throw toResourceError(error)
    }
    await this.#changes.changed()
    return publicUser(stored)
  }

  async setPassword(username: string, password: string): Promise<void> {
    const stored = this.#store.get(username)
    if (!stored) throw new ResourceError('NOT_FOUND', `no user ${username}`)
    checkPassword(password)
    const [hash, scram] = await Promise.all([
      hashPassword(password, this.#scryptCost),
      storedScram(password, this.#scramIterations),
    ])
    await this.#store.put(username, { ...stored, password: hash, scram, generation: randomId() })
    this.authCache.forget(username)
    await this.#changes.changed()
  }

  /** Changes a user's role or super-user flag. */
  async update(username: string, changes: { role?: string; superUser?: boolean }): Promise<User> {
    const stored = this.#store.get(username)
    if (!stored) throw new ResourceError('NOT_FOUND', `no user ${username}`)
    if (changes.role !== undefined && !this.#permissions.hasRole(changes.role)) {
      throw new ResourceError('INVALID', `unknown role ${changes.role}`)
    }
    const next = { ...stored, ...changes }
    await this.#store.put(username, next)
    this.authCache.forget(username)
    await this.#changes.changed()
    return publicUser(next)
  }

  list(): User[] {
    return [...this.#store.entries()].map((e) => publicUser(e.value))
  }

  async delete(username: string): Promise<boolean> {
    if (!this.#store.get(username)) return false
    await this.#store.delete(username)
    this.authCache.forget(username)
    await this.#changes.changed()
    return true
  }

  find(username: string): User | null {
    const stored = this.#store.get(username)
    return stored ? publicUser(stored) : null
  }

  /** The SCRAM-SHA-256 credential stored with the user's password, or null (unknown user, or set before SCRAM). */
  scramCredentials(username: string): ScramCredential | null {
    const scram = this.#store.get(username)?.scram
    if (!scram) return null
    return {
      mechanism: 'SCRAM-SHA-256',
      salt: Buffer.from(scram.salt, 'base64url'),
      iterations: scram.iterations,
      storedKey: Buffer.from(scram.storedKey, 'base64url'),
      serverKey: Buffer.from(scram.serverKey, 'base64url'),
    }
  }

  /**
   * The user whose password this is, or null. `source` (the client's address) counts failures for the
   * back-off; while it applies the attempt is refused with TOO_MANY_REQUESTS (`details.retryAfterMs`)
   * before any hashing. A password verified within the cache's lifetime is accepted even then.
   */
  async authenticate(username: string, password: string, source?: string): Promise<User | null> {
    const stored = this.#store.get(username)
    // A hit counts only while the stored hash is the one verified, so a new password or a deleted user
    // (even one changed by another process) takes effect at once; the role is always read fresh.
    if (stored && this.authCache.has(username, password, stored.password)) return publicUser(stored)
    const wait = this.#limiter.delay(source, username)
    if (wait > 0) {
      this.#onFailure?.({ username, source, reason: 'backed off', retryAfterMs: wait })
      throw new ResourceError('TOO_MANY_REQUESTS', 'too many failed attempts; try again later', {
        details: { retryAfterMs: wait },
      })
    }
    if (!stored) {
      await verifyPassword(password, await (this.#dummy ??= hashPassword('dummy-password', this.#scryptCost)))
      this.#failed(username, source, 'unknown user')
      return null
    }
    if (!(await verifyPassword(password, stored.password))) {
      this.#failed(username, source, 'wrong password')
      return null
    }
    this.#limiter.succeeded(username)
    this.authCache.remember(username, password, stored.password)
    return publicUser(stored)
  }

  /**
   * Whether `password` is `username`'s, without counting a failure, logging one or waiting out a back-off:
   * for the operator's own checks (the server compares ADMIN_PASSWORD with the admin's at start), never
   * for a client's credentials.
   */
  async checkPassword(username: string, password: string): Promise<boolean> {
    const stored = this.#store.get(username)
    return stored !== undefined && (await verifyPassword(password, stored.password))
  }

  #failed(username: string, source: string | undefined, reason: AuthFailure['reason']): void {
    this.#limiter.failed(source, username)
    this.#onFailure?.({ username, source, reason })
  }

  /** A signed token for `user`, valid until it expires, the user is deleted or its password changes. */
  async issueToken(user: User, options: { expiresInMs?: number } = {}): Promise<string> {
    const stored = this.#store.get(user.username)
    if (!stored) throw new ResourceError('UNAUTHORIZED', `no user ${user.username}`)
    const now = Date.now()
    const claims = {
      u: user.username,
      g: stored.generation ?? '',
      iat: now,
      exp: now + (options.expiresInMs ?? DEFAULT_TOKEN_TTL_MS),
    }
    const body = Buffer.from(JSON.stringify(claims)).toString('base64url')
    return `${body}.${(await this.#hmac(body)).toString('base64url')}`
  }

  async verifyToken(token: string): Promise<User | null> {
    const dot = token.indexOf('.')
    if (dot <= 0) return null
    const body = token.slice(0, dot)
    const signature = Buffer.from(token.slice(dot + 1), 'base64url')
    const expected = await this.#hmac(body)
    if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) return null
    let claims: { u?: unknown; g?: unknown; exp?: unknown }
    try {
      claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'))
    } catch {
      return null
    }
    if (typeof claims.u !== 'string' || typeof claims.exp !== 'number' || claims.exp <= Date.now())
      return null
    // The current user, so a deleted user's or changed role's token does not outlive the change, and
    // only while the password it was issued under is the user's (tokens from before `g` existed count
    // as generation '' until the next password change).
    const stored = this.#store.get(claims.u)
    if (!stored || (claims.g ?? '') !== (stored.generation ?? '')) return null
    return publicUser(stored)
  }

  async #hmac(body: string): Promise<Buffer> {
    return createHmac('sha256', await this.#getSecret())
      .update(body)
      .digest()
  }

  #getSecret(): Promise<Buffer> {
    return (this.#secret ??= this.#loadSecret())
  }

  async #loadSecret(): Promise<Buffer> {
    let stored = this.#system.get('tokenSecret')
    if (!(stored instanceof Uint8Array)) {
      stored = randomBytes(32)
      await this.#system.put('tokenSecret', stored)
    }
    return Buffer.from(stored as Uint8Array)
  }
}

const REVISION_KEY = 'usersRevision'

function randomId(): string {
  return randomBytes(12).toString('base64url')
}

function checkPassword(password: string): void {
  if (typeof password !== 'string' || password.length === 0)
    throw new ResourceError('INVALID', 'password must not be empty')
}
