/**
 * The broker's sessions by client id, and the one owner of their life cycle: a CONNECT claims a session
 * (ownership check, takeover of the connection holding it, clean start) and attaches to it; a closed
 * connection detaches (the session stays, durable, or ends); expiry timers; start-up restore. Nothing
 * else adds or removes sessions, so cluster-wide takeover hooks in here (`takeOver`).
 */
import type { Orphan, SessionSubscription } from './outbound-flow.js'
import { type AttachSettings, Session } from './session.js'
import type { SessionHost, SessionOutlet } from './session-outlet.js'
import { mayTakeSession, type SessionOwner } from './session-owner.js'
import { NEVER_EXPIRES, SESSIONS_STORE, type StoredSession } from './session-store.js'
import type { ClientOwnership } from './types.js'
import type { WillKeeper } from './wills.js'

const MAX_TIMER_MS = 2 ** 31 - 1

/** What the registry needs of the broker besides what sessions need. */
export interface RegistryHost extends SessionHost {
  /** The broker is shutting down: sessions going offline get no expiry timer (they expire after restart). */
  readonly closing: boolean
}

/** A session claimed by a CONNECT: the one it resumes, or none (a new session starts). */
export type Claim = { refused: 'not-owner' } | { refused?: undefined; resumed: Session | undefined }

export class SessionRegistry {
  private readonly sessions = new Map<string, Session>()
  /** Client ids whose session ended and whose erasure is not committed yet (the stored record is stale). */
  private readonly erasing = new Map<string, number>()
  private readonly expiryTimers = new Map<Session, NodeJS.Timeout>()
  private sharedTurn = 0
  /**
   * Every stored session is in memory (a broker alone, restored, none forgotten): a client id not in
   * `sessions` has no record, and a CONNECT reads none (an LMDB read was ~3 % of S5's CPU).
   */
  private allInMemory = false

  constructor(
    private readonly host: RegistryHost,
    private readonly wills: WillKeeper,
    /** A cluster's client-id ownership; unset: this broker alone serves its client ids. */
    private readonly ownership?: ClientOwnership,
  ) {}

  /**
   * Before a CONNECT claims the session of `clientId`: in a cluster, takes the client id from the node
   * that serves it (which closes its connection and lets go of the session); a copy of the session held
   * here is then stale and forgotten, so the claim reads it as that node left it. Null (nothing to wait
   * for) on a broker alone.
   */
  acquire(clientId: string): Promise<void> | null {
    if (this.ownership === undefined) return null
    return this.acquireFrom(this.ownership, clientId)
  }

  private async acquireFrom(ownership: ClientOwnership, clientId: string): Promise<void> {
    let moved: boolean
    try {
      moved = await ownership.acquire(clientId)
    } catch (err) {
      // NATS unreachable: served here anyway (availability); the owners settle it once NATS is back
      this.host.logger.warn({ err, clientId }, 'mqtt: client id ownership not established')
      return
    }
    if (moved) this.forget(clientId)
  }

  /**
   * Another node of a cluster took `clientId`: its connection here is taken over (0x8E) and its session
   * forgotten here without being erased (the other node serves it from the replicated state).
   */
  release(clientId: string): void {
    this.takeOver(clientId)
    this.forget(clientId)
  }

  /** Drops an offline session from memory, not from storage. */
  private forget(clientId: string): void {
    const session = this.sessions.get(clientId)
    if (session === undefined || session.connection !== null) return
    this.allInMemory = false
    this.clearExpiry(session)
    this.sessions.delete(clientId)
    session.release()
  }

  /** Sessions in memory (connected, and durable ones whose client is away). */
  values(): IterableIterator<Session> {
    return this.sessions.values()
  }

  get(clientId: string): Session | undefined {
    return this.sessions.get(clientId)
  }

  /** Whether a connection holds the session of `clientId` now. */
  isConnected(clientId: string): boolean {
    return (this.sessions.get(clientId)?.connection ?? null) !== null
  }

  /** A session in memory, or restored from its record; undefined when there is none. */
  find(clientId: string): Session | undefined {
    const live = this.sessions.get(clientId)
    if (live !== undefined) return live
    if (this.allInMemory || this.erasing.has(clientId)) return undefined
    const rec = this.host.state<StoredSession>(SESSIONS_STORE).get(clientId)
    if (rec === undefined || rec.v !== 1) return undefined
    const session = Session.restore(this.host, rec)
    this.sessions.set(clientId, session)
    return session
  }

  /**
   * The takeover entry point: the connection holding the session of `clientId` (if any) is closed with
   * v5 DISCONNECT 0x8E Session taken over [MQTT-3.1.4-2], its will rules apply and the session goes
   * offline (durable) or ends. Called for a CONNECT on this node, and by a cluster for a CONNECT with the
   * same client id on another node. True when a connection was taken over.
   */
  takeOver(clientId: string): boolean {
    const conn = this.sessions.get(clientId)?.connection ?? null
    if (conn === null) return false
    conn.takeOver()
    return true
  }

  /**
   * A CONNECT of `owner` claims the session of `clientId`: another user's session is refused; the
   * connection holding it is taken over; a clean start (or an ended session) ends it, else its delayed
   * wills are cancelled and it is resumed. Synchronous unless a session has to end first, so that a claim
   * and its attach happen in one step when nothing is erased.
   */
  claim(clientId: string, owner: SessionOwner, cleanStart: boolean): Claim | Promise<Claim> {
    const session = this.find(clientId)
    if (session !== undefined && !session.destroyed && !mayTakeSession(session.owner, owner)) {
      return { refused: 'not-owner' }
    }
    this.takeOver(clientId)
    if (session === undefined) return { resumed: undefined }
    if (cleanStart || session.destroyed) return this.end(session).then(() => ({ resumed: undefined }))
    this.wills.cancel(clientId)
    return { resumed: session }
  }

  /**
   * Attaches `outlet` to the claimed session (or a new one). Returns the session and the write that
   * persists the attachment (null: none), which CONNACK waits for.
   */
  attach(
    clientId: string,
    resumed: Session | undefined,
    outlet: SessionOutlet,
    settings: AttachSettings,
  ): { session: Session; persisted: Promise<void> | null } {
    let session = resumed
    if (session === undefined) {
      session = new Session(this.host, clientId)
      this.sessions.set(clientId, session)
    }
    this.clearExpiry(session)
    return { session, persisted: session.attach(outlet, settings) }
  }

  /** The connection of `session` closed: keep it (durable) or end it. */
  detach(session: Session): void {
    const orphans = session.detach()
    if (orphans.length > 0) this.redeliverShared(session, orphans)
    if (!session.durable || session.destroyed) {
      if (!session.destroyed) {
        this.end(session).catch(loggedByTrack)
        this.ownership?.forget(session.clientId)
      }
      return
    }
    session.wentOffline(Date.now())
    if (!this.host.closing) this.scheduleExpiry(session)
  }

  /** Ends a session: subscriptions closed, persisted state erased; a delayed will is published now. */
  end(session: Session): Promise<void> {
    this.clearExpiry(session)
    const persisted = session.persisted
    const erased = session.end()
    const clientId = session.clientId
    if (this.sessions.get(clientId) === session) this.sessions.delete(clientId)
    this.wills.publishNow(clientId)
    if (!persisted) return erased
    const n = (this.erasing.get(clientId) ?? 0) + 1
    this.erasing.set(clientId, n)
    return erased.finally(() => {
      const left = (this.erasing.get(clientId) ?? 1) - 1
      if (left <= 0) this.erasing.delete(clientId)
      else this.erasing.set(clientId, left)
    })
  }

  /** Start-up: the sessions the previous process left. False when they cannot be read. */
  restore(now: number): boolean {
    let records: StoredSession[]
    try {
      records = [...this.host.state<StoredSession>(SESSIONS_STORE).entries()].map((e) => e.value)
    } catch (err) {
      this.host.logger.error({ err }, 'mqtt: cannot read persisted sessions')
      return false
    }
    for (const rec of records) {
      // a cluster: only the sessions this node serves (one node runs each expiry)
      if (rec?.v !== 1 || (this.ownership !== undefined && !this.ownership.owns(rec.clientId))) continue
      const session = Session.restore(this.host, rec)
      // Connected when the previous process died: it went offline then.
      if (session.disconnectedAt === null) session.wentOffline(now)
      this.sessions.set(session.clientId, session)
      if (session.expiry < NEVER_EXPIRES) this.scheduleExpiry(session)
    }
    // a cluster node also finds sessions that other nodes' records brought (read when claimed)
    this.allInMemory = this.ownership === undefined
    return true
  }

  /**
   * A cluster: this node took over `clientId` from a node that died (`offlineSince`: when it was last
   * heard). Its durable session is restored from its record and its expiry runs here; a session without
   * a record (not durable) ended with the dead node's connection and nobody owns its client id any more.
   * Returns the session's expiry, ms (0: none kept; its delayed wills go out at once); undefined when
   * a connection here holds it (the client came back: its wills were cancelled, its new one is live).
   */
  adopt(clientId: string, offlineSince: number): number | undefined {
    if (this.isConnected(clientId)) return undefined
    const session = this.find(clientId)
    if (session === undefined || session.destroyed) {
      this.ownership?.forget(clientId)
      return 0
    }
    // connected on the dead node: it went offline when that node was last heard
    if (session.disconnectedAt === null) session.wentOffline(offlineSince)
    if (session.expiry < NEVER_EXPIRES) this.scheduleExpiry(session)
    return session.expiryMs()
  }

  /** Broker shutdown: expiry timers stop (sessions expire after the next start, from their record). */
  close(): void {
    for (const timer of this.expiryTimers.values()) clearTimeout(timer)
    this.expiryTimers.clear()
  }

  /**
   * Messages of a shared subscription that a member left unacknowledged (or queued) when it went away
   * go to another online member of the same group (MQTT 5 section 4.8.2), preferring one with room.
   */
  private redeliverShared(from: Session, orphans: Orphan[]): void {
    for (const { filter, event, packetId } of orphans) {
      const members: [Session, SessionSubscription][] = []
      for (const s of this.sessions.values()) {
        if (s.connection === null || s.destroyed) continue
        const sub = s.subscriptions.get(filter)
        if (sub !== undefined && sub.handle !== null && !sub.closed) members.push([s, sub])
      }
      if (members.length === 0) {
        this.host.logger.debug(`mqtt: no member of ${filter} left for a message on ${event.topic}`)
        continue
      }
      const turn = this.sharedTurn++
      let pick = members[turn % members.length]!
      for (let i = 0; i < members.length; i++) {
        const m = members[(turn + i) % members.length]!
        if (m[0].canTake(m[1])) {
          pick = m
          break
        }
      }
      if (packetId !== undefined) from.dropInflight(packetId)
      pick[0].deliver(pick[1], event, undefined)
    }
  }

  private clearExpiry(session: Session): void {
    const timer = this.expiryTimers.get(session)
    if (timer !== undefined) {
      clearTimeout(timer)
      this.expiryTimers.delete(session)
    }
  }

  private scheduleExpiry(session: Session): void {
    this.clearExpiry(session)
    const ms = session.expiryMs()
    if (!Number.isFinite(ms)) return
    const remaining = (session.disconnectedAt ?? Date.now()) + ms - Date.now()
    if (remaining <= 0) {
      this.end(session).catch(loggedByTrack)
      this.ownership?.forget(session.clientId)
      return
    }
    const timer = setTimeout(
      () => {
        this.expiryTimers.delete(session)
        if (session.connection === null && !session.destroyed) this.scheduleExpiry(session)
      },
      Math.min(remaining, MAX_TIMER_MS),
    )
    timer.unref?.()
    this.expiryTimers.set(session, timer)
  }
}

/** For background work whose failure track() has already logged: nobody waits for it. */
function loggedByTrack(): void {}
