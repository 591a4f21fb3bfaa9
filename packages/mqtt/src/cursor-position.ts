import type { StoredSubscription } from './session-store.js'

/** A change-log cursor and the node that issued it (undefined: a plain cursor). */
export interface CursorPosition {
  cursor: number
  issuer: number | undefined
}

/** Sets a subscription's cursor and the node that issued it. */
export function moveCursor(sub: StoredSubscription, cursor: number, issuer: number | undefined): void {
  sub.cursor = cursor
  if (issuer === undefined) delete sub.issuer
  else sub.issuer = issuer
}
