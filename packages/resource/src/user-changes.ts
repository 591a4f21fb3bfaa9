import { randomBytes } from 'node:crypto'

/**
 * A change to a user that open connections must follow: `deleted`, `role` (role or super-user flag
 * changed) or `password` (new password: its bearer tokens are revoked).
 */
export interface UserChange {
  type: 'deleted' | 'role' | 'password'
  username: string
}

export type UserChangeListener = (change: UserChange) => void

/** What a change is detected from: per user, its identity, role, super-user flag and credential generation. */
export interface UserFingerprint {
  /** Made when the user is added: a user deleted and added again under its name is another user. */
  id: string
  role: string
  superUser: boolean
  generation: string
}

export interface UserChangeFeedOptions {
  /** Every user's fingerprint as stored now. */
  read(): Map<string, UserFingerprint>
  /** The stored revision, a value written anew by every user change of any process. */
  revision(): unknown
  /** Writes a new revision (after a change made by this process). */
  writeRevision(revision: string): Promise<void>
  /** How often the revision is read to notice changes made by other processes (ms, default 1000). */
  pollMs?: number
  onError(error: unknown): void
}

/**
 * Tells listeners which users were deleted, changed role or changed password, whether this process made
 * the change (told at once) or another one on the same LMDB did, e.g. `proj-server user delete` while the
 * server runs (noticed by polling the users' revision, one read per `pollMs`). Changes are found by
 * comparing each user's fingerprint with the last one seen, so nothing depends on who wrote what: a
 * revision is a random value, not a counter two processes could both increment to the same number.
 * Polling runs only while someone listens.
 */
export class UserChangeFeed {
  readonly #options: UserChangeFeedOptions
  readonly #listeners = new Set<UserChangeListener>()
  #seen: Map<string, UserFingerprint> | null = null
  #revision: unknown
  #timer: NodeJS.Timeout | null = null
  #closed = false

  constructor(options: UserChangeFeedOptions) {
    this.#options = options
  }

  /** Adds a listener; returns the function that removes it. */
  on(listener: UserChangeListener): () => void {
    if (this.#listeners.size === 0 && !this.#closed) this.#start()
    this.#listeners.add(listener)
    return () => {
      this.#listeners.delete(listener)
      if (this.#listeners.size === 0) this.#stop()
    }
  }

  /** After this process changed a user: a new revision for other processes, and the listeners told now. */
  async changed(): Promise<void> {
    const revision = randomBytes(9).toString('base64url')
    await this.#options.writeRevision(revision)
    if (this.#seen !== null) this.#revision = revision
    this.check()
  }

  /** Compares every user with the last state seen and tells the listeners the differences. */
  check(): void {
    if (this.#seen === null) return
    const now = this.#options.read()
    const changes: UserChange[] = []
    for (const [username, before] of this.#seen) {
      const after = now.get(username)
      if (after === undefined || after.id !== before.id) {
        changes.push({ type: 'deleted', username })
        continue
      }
      if (after.role !== before.role || after.superUser !== before.superUser)
        changes.push({ type: 'role', username })
      if (after.generation !== before.generation) changes.push({ type: 'password', username })
    }
    this.#seen = now
    for (const change of changes) {
      for (const listener of [...this.#listeners]) {
        try {
          listener(change)
        } catch (error) {
          this.#options.onError(error)
        }
      }
    }
  }

  close(): void {
    this.#closed = true
    this.#stop()
    this.#listeners.clear()
  }

  #start(): void {
    this.#seen = this.#options.read()
    this.#revision = this.#options.revision()
    const pollMs = Math.max(10, this.#options.pollMs ?? 1000)
    this.#timer = setInterval(() => this.#poll(), pollMs)
    this.#timer.unref()
  }

  #stop(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = null
    this.#seen = null
  }

  #poll(): void {
    try {
      const revision = this.#options.revision()
      if (revision === this.#revision) return
      this.#revision = revision
      this.check()
    } catch (error) {
      this.#options.onError(error)
    }
  }
}
