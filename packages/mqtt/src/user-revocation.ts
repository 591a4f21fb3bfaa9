import type { BrokerCore } from './broker.js'
import { ReasonCode } from './errors.js'
import type { UserChange } from './runtime.js'
import { ownerOf } from './session-owner.js'

/**
 * Follows the runtime's user changes: a deleted user's connections are closed with DISCONNECT 0x87 (not
 * authorized), its will dropped, its sessions ended (nobody may resume them, not even a new user of the
 * same name) and its delayed wills discarded; a user whose role changed is disconnected with 0x98
 * (administrative action) and reconnects under its new rights (its will, if any, is published with
 * them). A password change closes nothing: MQTT connections authenticated once, at CONNECT. Returns the
 * function that stops following.
 */
export function followUserChanges(broker: BrokerCore): () => void {
  const subscribe = broker.runtime.onUserChange
  if (subscribe === undefined) return () => {}
  return subscribe.call(broker.runtime, (change) => onUserChange(broker, change))
}

function onUserChange(broker: BrokerCore, change: UserChange): void {
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
