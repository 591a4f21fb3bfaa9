import { ReasonCode } from './errors.js'
import type { RequestContext, Runtime, UserChange } from './runtime.js'
import { ownerOf, type SessionOwner } from './session-owner.js'
import type { Logger } from './types.js'

/** What revocation needs of the broker (the broker itself; an interface, so no import cycle). */
export interface RevocationHost<S extends { readonly owner: SessionOwner; readonly destroyed: boolean }> {
  readonly runtime: Runtime
  readonly closing: boolean
  readonly logger: Logger
  readonly connections: Iterable<{
    readonly ctx: RequestContext
    readonly clientId: string
    revoke(reasonCode: number, reason: string): void
    disconnectAdministratively(reason: string): void
  }>
  readonly sessions: { values(): Iterable<S> }
  discardWillsOf(username: string): void
  endSession(session: S): Promise<void>
}

/**
 * Follows the runtime's user changes: a deleted user's connections are closed with DISCONNECT 0x87 (not
 * authorized), its will dropped, its sessions ended (nobody may resume them, not even a new user of the
 * same name) and its delayed wills discarded; a user whose role changed is disconnected with 0x98
 * (administrative action) and reconnects under its new rights (its will, if any, is published with
 * them). A password change closes nothing: MQTT connections authenticated once, at CONNECT. Returns the
 * function that stops following.
 */
export function followUserChanges<S extends { readonly owner: SessionOwner; readonly destroyed: boolean }>(
  broker: RevocationHost<S>,
): () => void {
  const subscribe = broker.runtime.onUserChange
  if (subscribe === undefined) return () => {}
  return subscribe.call(broker.runtime, (change) => onUserChange(broker, change))
}

function onUserChange<S extends { readonly owner: SessionOwner; readonly destroyed: boolean }>(
  broker: RevocationHost<S>,
  change: UserChange,
): void {
  if (change.type === 'password' || broker.closing) return
  const deleted = change.type === 'deleted'
  const anonymous = broker.runtime.anonymous()
  if (deleted) broker.discardWillsOf(change.username)
  for (const conn of [...broker.connections]) {
    if (conn.ctx.user === null || ownerOf(conn.ctx.user, anonymous) !== change.username) continue
    broker.logger.info(
      `mqtt: disconnecting ${conn.clientId}: user ${change.username} ${deleted ? 'deleted' : 'changed role'}`,
    )
    if (deleted) conn.revoke(ReasonCode.NotAuthorized, 'user deleted')
    else conn.disconnectAdministratively('role changed')
  }
  if (!deleted) return
  for (const session of [...broker.sessions.values()]) {
    if (session.owner === change.username && !session.destroyed)
      void broker.endSession(session).catch(() => {})
  }
}
