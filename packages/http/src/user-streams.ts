import type { User, UserChange } from '@proj/resource'

/** Why a tracked stream is being closed: the server shuts down, or its user's access was revoked. */
type CloseReason = 'shutdown' | 'revoked'

/** Registers a stream's closer; returns the function that unregisters it. */
export type TrackStream = (close: (why: CloseReason) => void) => () => unknown

/**
 * The open WebSocket and SSE streams of each user, so that a user change closes the streams it affects:
 * all of a deleted user's or of one whose role changed (their subscriptions were checked against the old
 * rights), and after a password change those opened with a bearer token (the token is revoked; a stream
 * opened with the password authenticated once and keeps going, like an MQTT connection).
 */
export class UserStreams {
  readonly #byUser = new Map<string, Map<() => void, { viaToken: boolean }>>()

  /** Tracks a stream of `user` (nothing for no user or the anonymous one); returns the untrack function. */
  add(user: User | null, anonymous: User | null, viaToken: boolean, close: () => void): () => void {
    if (user === null || user === anonymous) return () => {}
    const name = user.username
    let streams = this.#byUser.get(name)
    if (streams === undefined) this.#byUser.set(name, (streams = new Map()))
    streams.set(close, { viaToken })
    return () => {
      const current = this.#byUser.get(name)
      if (current === undefined) return
      current.delete(close)
      if (current.size === 0) this.#byUser.delete(name)
    }
  }

  revoke(change: UserChange): void {
    const streams = this.#byUser.get(change.username)
    if (streams === undefined) return
    for (const [close, { viaToken }] of [...streams]) {
      if (change.type !== 'password' || viaToken) close()
    }
  }
}
