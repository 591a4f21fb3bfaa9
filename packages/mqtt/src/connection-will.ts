/**
 * The will of one connection (MQTT 5 section 3.1.2.5): persisted before CONNACK; on close published (now
 * or after its delay, by the will keeper) unless a normal DISCONNECT discarded it, its user was deleted,
 * or the broker shut down (then it stays persisted and is published after the next start).
 */
import type { Session } from './session.js'
import type { StoredWill } from './session-store.js'
import type { WillKeeper } from './wills.js'

export class ConnectionWill {
  private will: StoredWill | null = null
  private key: readonly [string, string] | null = null
  /** False after a normal DISCONNECT (v5 0x04 asks for the will anyway). */
  private publishOnClose = true
  private keepForRestart = false

  constructor(private readonly wills: WillKeeper) {}

  /** CONNECT: the will is persisted (CONNACK waits for it). */
  set(key: readonly [string, string], will: StoredWill): Promise<void> {
    this.will = will
    this.key = key
    return this.wills.persist(key, will)
  }

  /**
   * A DISCONNECT; `withWill` = v5 0x04. Returns the commit of the will's discard, which the connection
   * waits for before it closes (a crash after the close must not find the will pending at the next
   * start); null when nothing is discarded.
   */
  disconnect(withWill: boolean): Promise<unknown> | null {
    this.publishOnClose = withWill
    if (withWill || this.will === null || this.key === null) return null
    this.will = null
    return this.wills.discard(this.key)
  }

  /** Its user was deleted: the will is dropped, never published. */
  revoke(): void {
    if (this.will !== null && this.key !== null) void this.wills.discard(this.key)
    this.will = null
  }

  /** Broker shutdown: the will stays persisted and is published after the next start. */
  keepForNextStart(): void {
    this.publishOnClose = false
    this.keepForRestart = true
  }

  /** The connection closed; `graceful` = a normal DISCONNECT or a refused CONNECT. */
  closed(graceful: boolean, session: Session | null): void {
    const will = this.will
    const key = this.key
    if (will === null || key === null) return
    this.will = null
    if (this.keepForRestart) return
    if (graceful && !this.publishOnClose) {
      void this.wills.discard(key)
      return
    }
    const ends = session === null || !session.durable || session.destroyed
    this.wills.trigger(key, will, ends, session?.expiryMs() ?? 0)
  }
}
