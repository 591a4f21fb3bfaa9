/**
 * A durable session's persisted state: its record (subscriptions with their cursors), written at most once
 * per event-loop turn, and the removal of completed in-flight entries, which waits for the record so that
 * a cursor is always committed before the entry that held it back is forgotten.
 */
import type { Key } from './runtime.js'
import type { SessionHost } from './session-outlet.js'
import {
  INFLIGHT_STORE,
  packetKey,
  QOS2_STORE,
  SESSIONS_STORE,
  type StoredInflight,
  type StoredSession,
} from './session-store.js'

export class SessionRecord {
  private saveTimer: NodeJS.Immediate | null = null
  /** In-flight entries completed since the last save; null when none. */
  private completed: Key[] | null = null
  private written = false

  constructor(
    private readonly host: SessionHost,
    private readonly clientId: string,
    private readonly session: {
      readonly destroyed: boolean
      readonly durable: boolean
      toRecord(): StoredSession
      /** A fault of a scheduled save goes to the connection's barrier. */
      fault(err: unknown): void
    },
    restored: boolean,
  ) {
    this.written = restored
  }

  /** Set once the record was written, so a clean restart knows to delete it. */
  get persisted(): boolean {
    return this.written
  }

  /** Writes the session record, then forgets the in-flight entries completed before it (cursor first). */
  save(): Promise<void> {
    this.cancelSave()
    const session = this.session
    if (session.destroyed || !session.durable) return Promise.resolve()
    const done = this.completed
    this.completed = null
    this.written = true
    const host = this.host
    const p = host
      .state<StoredSession>(SESSIONS_STORE)
      .put(this.clientId, session.toRecord())
      .then(() => {
        if (done === null) return
        const inflight = host.state(INFLIGHT_STORE)
        return Promise.all(done.map((k) => inflight.delete(k))).then(() => {
          host.onFlowStep?.('outbound-complete-persisted')
        })
      })
    return host.track(p)
  }

  /** A save at the end of this event-loop turn (many cursor moves, one write). */
  scheduleSave(): void {
    if (this.saveTimer !== null || this.session.destroyed) return
    this.saveTimer = setImmediate(() => {
      this.saveTimer = null
      try {
        void this.save()
      } catch (err) {
        this.session.fault(err)
      }
    })
  }

  /** An in-flight entry is done: it is deleted with the next save. */
  completedInflight(packetId: number): void {
    ;(this.completed ??= []).push(packetKey(this.clientId, packetId))
    this.scheduleSave()
  }

  /** Commits an in-flight entry (its PUBLISH or PUBREL state). */
  putInflight(packetId: number, stored: StoredInflight): Promise<void> {
    return this.host.state(INFLIGHT_STORE).put(packetKey(this.clientId, packetId), stored)
  }

  /** Deletes every persisted trace of the session. */
  async erase(): Promise<void> {
    this.cancelSave()
    this.completed = null
    const host = this.host
    const clientId = this.clientId
    const ops: Promise<void>[] = [host.state(SESSIONS_STORE).delete(clientId)]
    for (const store of [INFLIGHT_STORE, QOS2_STORE]) {
      const s = host.state(store)
      for (const { key } of s.entries({ prefix: clientId })) {
        if (Array.isArray(key) && key[0] === clientId) ops.push(s.delete(key))
      }
    }
    this.written = false
    await host.track(Promise.all(ops).then(() => undefined))
  }

  private cancelSave(): void {
    if (this.saveTimer !== null) {
      clearImmediate(this.saveTimer)
      this.saveTimer = null
    }
  }
}

/** A session's in-flight entries and inbound QoS 2 ids as stored, oldest in-flight entry first. */
export function loadSessionState(
  host: SessionHost,
  clientId: string,
): { inflight: [number, StoredInflight][]; inboundQos2: number[] } {
  const inflight: [number, StoredInflight][] = []
  for (const { key, value } of host.state<StoredInflight>(INFLIGHT_STORE).entries({ prefix: clientId })) {
    if (!Array.isArray(key) || key[0] !== clientId) continue
    inflight.push([Number(key[1]), value])
  }
  // Oldest first: ids were allocated in increasing order (modulo wrap-around), cursors tell the order.
  inflight.sort((a, b) => a[1].cursor - b[1].cursor || a[0] - b[0])
  const inboundQos2: number[] = []
  for (const { key } of host.state(QOS2_STORE).entries({ prefix: clientId })) {
    if (Array.isArray(key) && key[0] === clientId) inboundQos2.push(Number(key[1]))
  }
  return { inflight, inboundQos2 }
}
