import type { User } from './runtime.js'

/**
 * Who a session belongs to: the name of the user who created it, or null for the anonymous user.
 * Kept apart from the user name because a real user may be called `anonymous` too.
 */
export type SessionOwner = string | null

/** The owner a connection of `user` has; `anonymous` is the runtime's anonymous user (compared by identity). */
export function ownerOf(user: User | null, anonymous: User | null): SessionOwner {
  return user === null || user === anonymous ? null : user.username
}

/**
 * A session belongs to the user who created it: only that user may resume, take over, replace or end
 * it by connecting with its client id (an anonymous session only anonymously).
 */
export function mayTakeSession(owner: SessionOwner, candidate: SessionOwner): boolean {
  return owner === candidate
}
