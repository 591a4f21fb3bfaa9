import { isSharedFilter } from '@proj/topic-matcher'
import { type CursorPosition, moveCursor as setCursor } from './cursor-position.js'
import { type InflightEntry, type Orphan, OutboundFlow, type SessionSubscription } from './outbound-flow.js'
import type { Delivery, ResourceEvent, Subscription } from './runtime.js'
import type { SessionHost, SessionOutlet } from './session-outlet.js'
import type { SessionOwner } from './session-owner.js'
import { loadSessionState, SessionRecord } from './session-record.js'
import {
  NEVER_EXPIRES,
  type StoredInflight,
  type StoredSession,
  type StoredSubscription,
} from './session-store.js'

/** What a CONNECT sets on the session it attaches to. */
export interface AttachSettings {
  /** Session Expiry Interval, seconds (NEVER_EXPIRES: never). */
  expiry: number
  owner: SessionOwner
  protocolVersion: number
}

/**
 * Session state (MQTT 3.1.1 section 4.1, MQTT 5 section 4.1): subscriptions with their change-log cursors,
 * the outbound in-flight window and queue, and the inbound QoS 2 packet ids awaiting PUBREL.
 * Durable sessions (expiry > 0) persist all of it through the runtime's state stores.
 */
/** The subscriptions of a session that has none. */
const NO_SUBSCRIPTIONS: ReadonlyMap<string, SessionSubscription> = new Map()
/** The in-flight map of a session that never delivered. */
const NO_INFLIGHT: ReadonlyMap<number, InflightEntry> = new Map()

export class Session {
  /** Made with the first subscription: an idle session holds no map. */
  private subs: Map<string, SessionSubscription> | null = null
  /** Inbound QoS 2 ids applied and awaiting PUBREL. */
  private inboundQos2: Set<number> | null = null
  /** Inbound QoS 2 ids whose publish is not committed yet. */
  private pendingQos2: Map<number, Promise<unknown>> | null = null
  private outlet: SessionOutlet | null = null
  /** The user who created the session (null: anonymous); only that user may connect with its client id. */
  private ownerName: SessionOwner = null
  private version = 4
  private expirySeconds = 0
  private offlineSince: number | null = null
  private ended = false
  /** Its persisted record; made when first written or erased (a clean session never needs one). */
  private rec: SessionRecord | null = null
  /** Restored from a record at start-up (so persisted before any write of this run). */
  private readonly restored: boolean

  constructor(
    readonly host: SessionHost,
    readonly clientId: string,
    restored = false,
  ) {
    this.restored = restored
  }

  /** The outbound side, made with the first delivery or restored in-flight message (idle: none). */
  private out: OutboundFlow | null = null

  private get outbound(): OutboundFlow {
    this.out ??= new OutboundFlow(this, this.host)
    return this.out
  }

  private get record(): SessionRecord {
    this.rec ??= new SessionRecord(this.host, this.clientId, this, this.restored)
    return this.rec
  }

  /** Commits an in-flight entry (durable sessions; the outbound flow calls it). */
  putInflight(packetId: number, stored: StoredInflight): Promise<void> {
    return this.record.putInflight(packetId, stored)
  }

  /** An in-flight entry is done: it is deleted with the next save (durable sessions). */
  completedInflight(packetId: number): void {
    this.record.completedInflight(packetId)
  }

  /** Subscriptions by filter. */
  get subscriptions(): ReadonlyMap<string, SessionSubscription> {
    return this.subs ?? NO_SUBSCRIPTIONS
  }

  /** Outbound QoS 1/2 messages sent and not yet acknowledged, by packet id. */
  get inflight(): ReadonlyMap<number, InflightEntry> {
    return this.out?.inflight ?? NO_INFLIGHT
  }

  /** The connection the session delivers to; null while its client is away. */
  get connection(): SessionOutlet | null {
    return this.outlet
  }

  get owner(): SessionOwner {
    return this.ownerName
  }

  get protocolVersion(): number {
    return this.version
  }

  /** Session Expiry Interval, seconds (NEVER_EXPIRES: never). */
  get expiry(): number {
    return this.expirySeconds
  }

  /** ms since the epoch when its client went away; null while connected. */
  get disconnectedAt(): number | null {
    return this.offlineSince
  }

  /** Ended (expired, replaced by a clean start, its user deleted): never used again. */
  get destroyed(): boolean {
    return this.ended
  }

  /** Set once the record was written, so a clean restart knows to delete it. */
  get persisted(): boolean {
    return this.rec?.persisted ?? this.restored
  }

  get durable(): boolean {
    return this.expirySeconds > 0
  }

  /** Outbound messages waiting behind a full in-flight window. */
  get queued(): number {
    return this.out?.queued ?? 0
  }

  // -------------------------------------------------------------------------------------------
  // Outbound delivery

  /**
   * A subscription of this session, not yet open (no runtime handle), whose listener delivers to
   * it; the inverse of the entries of {@link toRecord}.
   */
  subscription(s: StoredSubscription): SessionSubscription {
    const sub: SessionSubscription = {
      filter: s.filter,
      qos: s.qos,
      nl: s.nl,
      rap: s.rap,
      rh: s.rh,
      cursor: s.cursor,
      shared: isSharedFilter(s.filter),
      handle: null,
      closed: false,
      listener: () => {},
    }
    if (s.id !== undefined) sub.id = s.id
    if (s.accept !== undefined) sub.accept = s.accept
    if (s.issuer !== undefined) sub.issuer = s.issuer
    // Resource code may call this listener directly: what delivery throws (an encoder, say) closes
    // this session's connection instead of returning into that code.
    sub.listener = (event, delivery) => {
      try {
        this.outbound.deliver(sub, event, delivery)
      } catch (err) {
        this.fault(err)
      }
    }
    return sub
  }

  /** A fault while delivering goes to the connection's barrier (Connection.fault). */
  fault(err: unknown): void {
    const conn = this.connection
    if (conn !== null) conn.fault(err)
    else this.host.logger.error({ err, clientId: this.clientId }, 'mqtt: delivery failed')
  }

  /** Called by the runtime for every event matching `sub` (and for a shared message another member left). */
  deliver(sub: SessionSubscription, event: ResourceEvent, delivery: Delivery | undefined): void {
    this.outbound.deliver(sub, event, delivery)
  }

  /** Shared subscriptions: whether this member can take another message now (else its turn passes). */
  canTake(sub: SessionSubscription): boolean {
    return this.outbound.canTake(sub)
  }

  /** An in-flight message another member of its shared subscription took over: forgotten here. */
  dropInflight(packetId: number): void {
    this.out?.dropInflight(packetId)
  }

  /** PUBACK (QoS 1) or PUBCOMP (QoS 2) or a v5 PUBREC with an error: the message is done. */
  complete(packetId: number, expectQos: 1 | 2, expectState: 'publish' | 'pubrel'): boolean {
    return this.out?.complete(packetId, expectQos, expectState) ?? false
  }

  /** PUBREC: see {@link OutboundFlow.received}. */
  received(packetId: number): boolean | Promise<void> {
    return this.out?.received(packetId) ?? false
  }

  fillWindow(): void {
    this.out?.fillWindow()
  }

  /** On reconnect: resend unacknowledged PUBLISH (DUP=1) and PUBREL in their original order [MQTT-4.4.0-1]. */
  retransmit(conn: SessionOutlet): void {
    this.out?.retransmit(conn)
  }

  /** Effective catch-up cursor of a subscription: nothing at or before it needs replaying. */
  catchUpCursor(sub: SessionSubscription): CursorPosition {
    return this.out?.catchUpCursor(sub) ?? { cursor: sub.cursor, issuer: sub.issuer }
  }

  /**
   * The connection went away: live subscriptions stop, the queue is dropped (the log replays it).
   * Returns the messages of shared subscriptions it held (queued, or sent and not yet acknowledged),
   * for another member of the group.
   */
  detach(): Orphan[] {
    const orphans = this.out?.detach() ?? []
    this.outlet = null
    this.pendingQos2 = null
    for (const sub of this.subscriptions.values()) {
      sub.handle?.close()
      sub.handle = null
    }
    if (!this.durable) {
      for (const sub of this.subscriptions.values()) sub.closed = true
    }
    return orphans
  }

  // -------------------------------------------------------------------------------------------
  // Life cycle: the session registry and the connection call these; the session writes its own fields.

  /**
   * A CONNECT took this session (new or resumed): it delivers to `outlet` from now on. Returns the write
   * that persists the change (the record of a durable session, the erasure of one that no longer is), or
   * null when there is none.
   */
  attach(outlet: SessionOutlet, settings: AttachSettings): Promise<void> | null {
    const wasDurable = this.durable
    this.expirySeconds = settings.expiry
    this.ownerName = settings.owner
    this.version = settings.protocolVersion
    this.offlineSince = null
    this.outlet = outlet
    if (this.durable) return this.save()
    if (wasDurable && this.persisted) return this.erase()
    return null
  }

  /** The Session Expiry Interval a v5 DISCONNECT sets. */
  setExpiry(seconds: number): void {
    this.expirySeconds = seconds
  }

  /** Its client went away at `at` (ms since the epoch): recorded, and the record written. */
  wentOffline(at: number): void {
    this.offlineSince = at
    void this.save()
  }

  /**
   * Another node of a cluster serves it now: this copy is dropped without erasing anything (its last save
   * is under way) and never written again.
   */
  release(): void {
    this.ended = true
  }

  /** Ends the session: its subscriptions close and its persisted state is erased. */
  end(): Promise<void> {
    this.ended = true
    for (const sub of this.subscriptions.values()) {
      sub.closed = true
      sub.handle?.close()
      sub.handle = null
    }
    return this.persisted ? this.erase() : Promise.resolve()
  }

  // -------------------------------------------------------------------------------------------
  // Subscriptions (SUBSCRIBE, UNSUBSCRIBE, resume)

  /** A new subscription; one with the same filter is replaced [MQTT-3.8.4-3]. Returns the one replaced. */
  addSubscription(sub: SessionSubscription): SessionSubscription | undefined {
    const subs = (this.subs ??= new Map())
    const existing = subs.get(sub.filter)
    if (existing) {
      existing.closed = true
      existing.handle?.close()
    }
    subs.set(sub.filter, sub)
    return existing
  }

  /** UNSUBSCRIBE of one filter; false when there was no such subscription. */
  removeSubscription(filter: string): boolean {
    const sub = this.subs?.get(filter)
    if (sub === undefined) return false
    sub.closed = true
    sub.handle?.close()
    sub.handle = null
    this.subs!.delete(filter)
    return true
  }

  /** The runtime refused `sub`: it is forgotten (if it is still the subscription of its filter). */
  refused(sub: SessionSubscription, save: boolean): void {
    if (this.subs?.get(sub.filter) !== sub) return
    this.subs.delete(sub.filter)
    if (save) this.scheduleSave()
  }

  /**
   * The runtime subscription of `sub` is open: it delivers from now on, unless `sub` was closed or the
   * session moved to another connection meanwhile. `moveCursor`: a new subscription starts at the live cursor.
   */
  opened(sub: SessionSubscription, handle: Subscription, moveCursor: boolean, by: SessionOutlet): void {
    const live = handle.cursor
    if (live !== undefined && live > sub.cursor && moveCursor)
      setCursor(sub, live, this.host.runtime.cursorIssuer)
    if (sub.closed || this.outlet !== by) handle.close()
    else sub.handle = handle
  }

  // -------------------------------------------------------------------------------------------
  // Inbound QoS 2 packet ids (they survive the connection: MQTT 4.3.3)

  /** Applied (committed) and awaiting PUBREL. */
  hasInboundQos2(packetId: number): boolean {
    return this.inboundQos2?.has(packetId) === true
  }

  /** The publish of `packetId` not committed yet, if any. */
  pendingInboundQos2(packetId: number): Promise<unknown> | undefined {
    return this.pendingQos2?.get(packetId)
  }

  /** `work` commits the publish of `packetId`; until it settles the id is pending. */
  inboundQos2Started(packetId: number, work: Promise<unknown>): void {
    const pending = (this.pendingQos2 ??= new Map())
    pending.set(packetId, work)
    work.finally(() => {
      if (pending.get(packetId) === work) pending.delete(packetId)
    })
  }

  inboundQos2Applied(packetId: number): void {
    ;(this.inboundQos2 ??= new Set()).add(packetId)
  }

  /** PUBREL: the id is forgotten; false when it was not known. */
  inboundQos2Released(packetId: number): boolean {
    return this.inboundQos2?.delete(packetId) === true
  }

  // -------------------------------------------------------------------------------------------
  // Persistence

  toRecord(): StoredSession {
    const subscriptions: StoredSubscription[] = []
    for (const s of this.subscriptions.values()) {
      const rec: StoredSubscription = {
        filter: s.filter,
        qos: s.qos,
        nl: s.nl,
        rap: s.rap,
        rh: s.rh,
        cursor: s.cursor,
      }
      if (s.id !== undefined) rec.id = s.id
      if (s.accept !== undefined) rec.accept = s.accept
      if (s.issuer !== undefined) rec.issuer = s.issuer
      subscriptions.push(rec)
    }
    return {
      v: 1,
      clientId: this.clientId,
      username: this.ownerName,
      protocolVersion: this.version,
      expiry: this.expirySeconds,
      disconnectedAt: this.offlineSince,
      subscriptions,
    }
  }

  /** Writes the session record, then forgets the in-flight entries completed before it (cursor first). */
  save(): Promise<void> {
    // A session that is not durable writes nothing: no record is made for it.
    if (this.rec === null && (!this.durable || this.ended)) return Promise.resolve()
    return this.record.save()
  }

  scheduleSave(): void {
    if (this.rec === null && (!this.durable || this.ended)) return
    this.record.scheduleSave()
  }

  /** Deletes every persisted trace of the session. */
  erase(): Promise<void> {
    return this.record.erase()
  }

  /** Rebuilds an offline session from its persisted record. */
  static restore(host: SessionHost, rec: StoredSession): Session {
    const session = new Session(host, rec.clientId, true)
    session.ownerName = rec.username
    session.version = rec.protocolVersion
    session.expirySeconds = rec.expiry
    session.offlineSince = rec.disconnectedAt
    for (const s of rec.subscriptions) session.addSubscription(session.subscription(s))
    const { inflight, inboundQos2 } = loadSessionState(host, rec.clientId)
    for (const [packetId, v] of inflight) {
      session.outbound.restore({
        packetId,
        qos: v.qos,
        state: v.state,
        topic: v.topic,
        payload: Buffer.from(v.payload),
        retain: v.retain,
        filter: v.filter,
        also: v.also,
        cursor: v.cursor,
        issuer: v.issuer,
        props: v.props ? Buffer.from(v.props) : undefined,
        packet: null,
      })
    }
    for (const id of inboundQos2) session.inboundQos2Applied(id)
    return session
  }

  /** Seconds -> ms until expiry, Infinity for never. */
  expiryMs(): number {
    return this.expirySeconds >= NEVER_EXPIRES ? Number.POSITIVE_INFINITY : this.expirySeconds * 1000
  }
}
