/**
 * A session's outbound side (MQTT 5 section 4.3, 4.4, 4.9): delivery of matching events at
 * min(granted, published) QoS, one copy for overlapping subscriptions, the in-flight window (capped by the
 * client's Receive Maximum) and the queue behind it, packet ids, each QoS 1/2 entry committed before its
 * PUBLISH leaves (durable sessions), PUBACK/PUBREC/PUBCOMP, resending on reconnect, and the subscription
 * cursors that move as messages complete. Part of a Session, which owns the subscriptions.
 */
import { type CursorPosition, moveCursor } from './cursor-position.js'
import { settle } from './fault.js'
import { type MergedDelivery, OverlapGuard } from './overlap.js'
import { encodeAck, encodePublish, PUBREL } from './packets.js'
import type { Delivery, ResourceEvent, Subscription } from './runtime.js'
import type { SessionHost, SessionOutlet } from './session-outlet.js'
import type { StoredInflight, StoredSubscription } from './session-store.js'

/** One subscription of a session; `handle` is the live runtime subscription while the client is online. */
export interface SessionSubscription extends StoredSubscription {
  /** A `$share/{group}/{filter}` subscription: no catch-up, unacknowledged messages move to another member. */
  shared: boolean
  handle: Subscription | null
  closed: boolean
  listener: (event: ResourceEvent, delivery: Delivery) => void
}

/** An outbound QoS 1/2 message waiting for PUBACK / PUBREC / PUBCOMP. */
export interface InflightEntry {
  packetId: number
  qos: 1 | 2
  state: 'publish' | 'pubrel'
  topic: string
  payload: Uint8Array
  retain: boolean
  filter: string
  /** Other subscriptions this one copy was sent for (overlapping filters): their cursors move with it. */
  also: string[] | undefined
  cursor: number
  /** The node that issued `cursor` (this one's runtime, or the one that stored the entry). */
  issuer?: number
  props: Buffer | undefined
  /** Encoded packet as first sent (DUP 0), for the current connection's protocol version. */
  packet: Buffer | null
  /** Durable sessions: the commit of the PUBREL state, which PUBREL waits for (a repeated PUBREC too). */
  released?: Promise<void>
  /** The event it carries (in memory only), to hand it to another member of a shared subscription. */
  event?: ResourceEvent
}

/** A message of a shared subscription that its member can no longer deliver (it went offline). */
export interface Orphan {
  filter: string
  event: ResourceEvent
  /** Set when the message is in this session's in-flight window (removed once another member takes it). */
  packetId?: number
}

interface Queued {
  sub: SessionSubscription
  event: ResourceEvent
  qos: 0 | 1 | 2
  retain: boolean
  merged: MergedDelivery | undefined
}

interface OutboxItem {
  packet: Buffer
  ready: boolean
  sub: SessionSubscription | null
  also: string[] | undefined
  cursor: number
}

/** What the outbound side reads of its session. */
export interface OutboundOwner {
  readonly clientId: string
  readonly subscriptions: ReadonlyMap<string, SessionSubscription>
  readonly durable: boolean
  readonly connection: SessionOutlet | null
  /** A fault while delivering goes to the connection's barrier (Connection.fault). */
  fault(err: unknown): void
  scheduleSave(): void
  /** Durable sessions: commits an in-flight entry (its PUBLISH or PUBREL state). */
  putInflight(packetId: number, stored: StoredInflight): Promise<void>
  /** Durable sessions: an in-flight entry is done (deleted with the next save). */
  completedInflight(packetId: number): void
}

/** The in-flight map of a flow that never sent a QoS 1/2 message. */
const NO_INFLIGHT: ReadonlyMap<number, InflightEntry> = new Map()

export class OutboundFlow {
  /** Made with the first QoS 1/2 message: a QoS 0 subscriber keeps none. */
  private inflightMap: Map<number, InflightEntry> | null = null
  /** Messages behind a full window; null when none wait. */
  private queue: Queued[] | null = null
  private queueHead = 0
  /** Packets waiting for their in-flight entry's commit (and those behind them); null when none. */
  private outbox: OutboxItem[] | null = null
  private nextPacketId = 1
  /** Created once the session has two subscriptions: one copy per event for overlapping filters. */
  private overlap: OverlapGuard | null = null

  constructor(
    private readonly owner: OutboundOwner,
    private readonly host: SessionHost,
  ) {}

  /** Outbound QoS 1/2 messages sent and not yet acknowledged, by packet id. */
  get inflight(): ReadonlyMap<number, InflightEntry> {
    return this.inflightMap ?? NO_INFLIGHT
  }

  /** Outbound messages waiting behind a full in-flight window. */
  get queued(): number {
    return this.queue === null ? 0 : this.queue.length - this.queueHead
  }

  /** Called by the runtime for every event matching `sub`. */
  deliver(sub: SessionSubscription, event: ResourceEvent, delivery: Delivery | undefined): void {
    const conn = this.owner.connection
    if (conn === null || sub.closed) return
    if (sub.nl && event.meta?.clientId === this.owner.clientId && !event.retained) return
    let merged: MergedDelivery | undefined
    if (!sub.shared && this.owner.subscriptions.size > 1) {
      const m = (this.overlap ??= new OverlapGuard()).merge(
        this.owner.subscriptions.values(),
        sub,
        event,
        this.owner.clientId,
      )
      if (m === null) return // sent already, for every subscription it matches
      merged = m
    }
    const granted = merged === undefined ? sub.qos : merged.qos
    const published = event.meta?.qos
    const qos = (published === undefined || published > granted ? granted : published) as 0 | 1 | 2
    const retain =
      event.retained ||
      ((sub.rap || merged?.rap === true || delivery?.retainAsPublished === true) && event.type !== 'message')
    if (this.queue !== null || (qos > 0 && this.inflight.size >= this.window(conn))) {
      if (this.queued >= this.host.maxQueued) {
        this.host.stats.dropped.queueFull++
        this.host.logger.warn(
          `mqtt: queue full for ${this.owner.clientId}, dropping a message on ${event.topic}`,
        )
        return
      }
      ;(this.queue ??= []).push({ sub, event, qos, retain, merged })
      return
    }
    this.send(conn, sub, event, qos, retain, merged)
  }

  private window(conn: SessionOutlet): number {
    return Math.min(this.host.maxInflight, conn.clientReceiveMaximum)
  }

  private send(
    conn: SessionOutlet,
    sub: SessionSubscription,
    event: ResourceEvent,
    qos: 0 | 1 | 2,
    retain: boolean,
    merged: MergedDelivery | undefined,
  ): void {
    const host = this.host
    const encoder = host.encoder
    // The last current value at subscribe time carries the position that snapshot is as of: a change it
    // already held (committed, still syncing when read) is not replayed to a session resuming after it.
    const cursor = event.cursor !== 0 ? event.cursor : (event.resumeCursor ?? 0)
    const ids = merged === undefined ? sub.id : merged.ids
    const also = merged?.also
    const expiry = encoder.expiryLeft(event)
    if (expiry !== undefined && expiry <= 0) {
      // [MQTT-3.3.2-5] the Message Expiry Interval passed before delivery started: never sent.
      host.stats.dropped.expired++
      this.advance(sub, also, cursor)
      return
    }
    if (qos === 0 && conn.congested) {
      // A reader that does not keep up loses QoS 0 messages (at most once), as in Mosquitto.
      host.stats.dropped.slowReader++
      this.advance(sub, also, cursor)
      return
    }
    const format = sub.accept ?? conn.accept
    const payload = encoder.payload(event, format)
    const props = conn.v5
      ? encoder.withSubscriptionId(
          encoder.eventProperties(event, format, sub.accept !== undefined || conn.acceptExplicit, expiry),
          ids,
        )
      : null
    const packetId = qos === 0 ? 0 : this.allocatePacketId()
    // Without a subscription identifier a QoS 0 packet is the same bytes for every subscriber: shared.
    const packet = encoder.publish(
      conn,
      event,
      payload,
      props,
      qos,
      retain,
      packetId,
      props === null || ids === undefined,
    )
    if (packet === null) {
      // [MQTT-3.1.2-25] a packet larger than the client allows is discarded as if it had been delivered.
      host.stats.dropped.tooLarge++
      this.advance(sub, also, cursor)
      return
    }
    conn.counters.messagesOut[qos]++
    if (qos === 0) {
      // Nothing to acknowledge: the subscription's cursor moves once the packet is written.
      this.write(conn, packet, null, sub, also, cursor)
      return
    }
    const entry: InflightEntry = {
      packetId,
      qos: qos as 1 | 2,
      state: 'publish',
      topic: event.topic,
      payload,
      retain,
      filter: sub.filter,
      also,
      cursor,
      props: props ?? undefined,
      packet,
    }
    const issuer = host.runtime.cursorIssuer
    if (issuer !== undefined) entry.issuer = issuer
    if (sub.shared) entry.event = event
    ;(this.inflightMap ??= new Map()).set(packetId, entry)
    if (this.owner.durable) {
      const stored: StoredInflight = {
        topic: entry.topic,
        payload: entry.payload,
        qos: entry.qos,
        retain,
        state: 'publish',
        filter: sub.filter,
        cursor,
      }
      if (issuer !== undefined) stored.issuer = issuer
      if (also !== undefined) stored.also = also
      if (props !== null && props.length > 0) stored.props = props
      // The entry is committed before the packet leaves, so a crash never delivers it twice under a new id.
      this.write(conn, packet, this.owner.putInflight(packetId, stored), null, undefined, 0)
    } else {
      this.write(conn, packet, null, null, undefined, 0)
    }
  }

  /** Shared subscriptions: whether this member can take another message now (else its turn passes). */
  canTake(sub: SessionSubscription): boolean {
    const conn = this.owner.connection
    if (conn === null || sub.closed) return false
    if (sub.qos === 0) return !conn.congested
    return this.queue === null && this.inflight.size < this.window(conn)
  }

  /** An in-flight message another member of its shared subscription took over: forgotten here. */
  dropInflight(packetId: number): void {
    if (this.inflightMap?.delete(packetId) !== true) return
    if (this.owner.durable) this.owner.completedInflight(packetId)
  }

  /** Writes in order; a packet waiting for its persistence holds back the ones behind it. */
  private write(
    conn: SessionOutlet,
    packet: Buffer,
    wait: Promise<void> | null,
    sub: SessionSubscription | null,
    also: string[] | undefined,
    cursor: number,
  ) {
    if (wait === null && this.outbox === null) {
      conn.write(packet)
      if (sub !== null) this.advance(sub, also, cursor)
      return
    }
    const item: OutboxItem = { packet, ready: wait === null, sub, also, cursor }
    ;(this.outbox ??= []).push(item)
    if (wait !== null) {
      // What the continuations throw goes to the connection's barrier (Connection.fault).
      settle(
        this.owner,
        wait,
        () => {
          item.ready = true
          this.host.onFlowStep?.('outbound-publish-persisted')
          this.drainOutbox()
        },
        (err) => {
          this.host.logger.error({ err }, 'mqtt: persisting an in-flight message failed')
          item.ready = true
          this.drainOutbox()
        },
      )
    }
  }

  private drainOutbox(): void {
    const outbox = this.outbox
    if (outbox === null) return // dropped when the connection went away
    const conn = this.owner.connection
    let i = 0
    while (i < outbox.length && outbox[i]!.ready) {
      const item = outbox[i++]!
      if (conn !== null) {
        conn.write(item.packet)
        if (item.sub === null) conn.noteSent('outbound-publish-sent')
        if (item.sub !== null) this.advance(item.sub, item.also, item.cursor)
      }
    }
    if (i > 0) outbox.splice(0, i)
    if (outbox.length === 0 && this.outbox === outbox) this.outbox = null
  }

  /**
   * Moves a subscription's cursor (and those of the overlapping ones it was sent for) forward, with the
   * node that issued it (default: this one).
   */
  private advance(
    sub: SessionSubscription | undefined,
    also: string[] | undefined,
    cursor: number,
    issuer = this.host.runtime.cursorIssuer,
  ): void {
    let moved = false
    if (sub !== undefined && cursor > sub.cursor) {
      moveCursor(sub, cursor, issuer)
      moved = true
    }
    if (also !== undefined) {
      for (const filter of also) {
        const other = this.owner.subscriptions.get(filter)
        if (other !== undefined && cursor > other.cursor) {
          moveCursor(other, cursor, issuer)
          moved = true
        }
      }
    }
    if (moved && this.owner.durable) this.owner.scheduleSave()
  }

  private allocatePacketId(): number {
    for (;;) {
      const id = this.nextPacketId
      this.nextPacketId = id === 65535 ? 1 : id + 1
      if (!this.inflight.has(id)) return id
    }
  }

  /** PUBACK (QoS 1) or PUBCOMP (QoS 2) or a v5 PUBREC with an error: the message is done. */
  complete(packetId: number, expectQos: 1 | 2, expectState: 'publish' | 'pubrel'): boolean {
    const entry = this.inflight.get(packetId)
    if (entry === undefined || entry.qos !== expectQos || entry.state !== expectState) return false
    this.inflightMap!.delete(packetId)
    const sub = this.owner.subscriptions.get(entry.filter)
    if (sub !== undefined && entry.cursor > sub.cursor) moveCursor(sub, entry.cursor, entry.issuer)
    if (entry.also !== undefined) this.advance(undefined, entry.also, entry.cursor, entry.issuer)
    if (this.owner.durable) this.owner.completedInflight(packetId)
    this.fillWindow()
    return true
  }

  /**
   * PUBREC: the QoS 2 message moves to the PUBREL state. False: no such message; true: PUBREL may go now;
   * a promise: PUBREL goes once it settles (durable sessions: the PUBREL state is committed first).
   */
  received(packetId: number): boolean | Promise<void> {
    const entry = this.inflight.get(packetId)
    if (entry === undefined || entry.qos !== 2) return false
    if (entry.state === 'publish') {
      entry.state = 'pubrel'
      entry.packet = null
      if (this.owner.durable) {
        const stored: StoredInflight = {
          topic: entry.topic,
          payload: entry.payload,
          qos: 2,
          retain: entry.retain,
          state: 'pubrel',
          filter: entry.filter,
          cursor: entry.cursor,
        }
        if (entry.issuer !== undefined) stored.issuer = entry.issuer
        if (entry.also !== undefined) stored.also = entry.also
        const released = this.host.track(this.owner.putInflight(packetId, stored))
        entry.released = released
        released.then(
          () => {
            if (entry.released === released) entry.released = undefined
          },
          () => {},
        )
      }
    }
    return entry.released ?? true
  }

  fillWindow(): void {
    const conn = this.owner.connection
    if (conn === null) return
    const queue = this.queue
    if (queue === null) return
    const window = this.window(conn)
    while (this.queueHead < queue.length) {
      const q = queue[this.queueHead]!
      if (q.qos > 0 && this.inflight.size >= window) break
      queue[this.queueHead++] = undefined as never
      if (!q.sub.closed) this.send(conn, q.sub, q.event, q.qos, q.retain, q.merged)
    }
    if (this.queue !== queue) return // dropped meanwhile (the connection went away)
    if (this.queueHead === queue.length) {
      this.queue = null
      this.queueHead = 0
    } else if (this.queueHead > 4096) {
      this.queue = queue.slice(this.queueHead)
      this.queueHead = 0
    }
  }

  /** On reconnect: resend unacknowledged PUBLISH (DUP=1) and PUBREL in their original order [MQTT-4.4.0-1]. */
  retransmit(conn: SessionOutlet): void {
    const runtime = this.host.runtime
    for (const entry of this.inflight.values()) {
      if (entry.state === 'pubrel') {
        const packet = encodeAck(PUBREL, entry.packetId, 0, conn.v5)
        const pending = entry.released
        // A PUBREL state not yet committed: as on the first PUBREL, the packet waits for it.
        if (pending === undefined) conn.write(packet)
        else
          pending.then(
            () => {
              if (this.owner.connection === conn) conn.write(packet)
            },
            () => {},
          )
        continue
      }
      if (!runtime.mayReceive(entry.topic, conn.ctx)) {
        // The user's permissions changed since it was sent: the message is dropped, not resent.
        this.host.logger.info(
          `mqtt: in-flight message on ${entry.topic} for ${this.owner.clientId} no longer permitted`,
        )
        this.complete(entry.packetId, entry.qos, 'publish')
        continue
      }
      const props = conn.v5 ? (entry.props ? Buffer.from(entry.props) : Buffer.alloc(0)) : null
      const packet = encodePublish(
        entry.topic,
        entry.payload,
        entry.qos,
        entry.retain,
        true,
        entry.packetId,
        props,
      )
      entry.packet = packet
      conn.write(packet)
    }
  }

  /** Effective catch-up cursor of a subscription (and its issuer): nothing at or before it needs replaying. */
  catchUpCursor(sub: SessionSubscription): CursorPosition {
    let cursor = sub.cursor
    let issuer = sub.issuer
    for (const entry of this.inflight.values()) {
      if (entry.cursor <= cursor) continue
      if (entry.filter === sub.filter || entry.also?.includes(sub.filter)) {
        cursor = entry.cursor
        issuer = entry.issuer
      }
    }
    return { cursor, issuer }
  }

  /**
   * The connection went away: the queue is dropped (the log replays it). Returns the messages of shared
   * subscriptions it held (queued, or sent and not yet acknowledged), for another member of the group.
   */
  detach(): Orphan[] {
    const orphans: Orphan[] = []
    const queue = this.queue ?? []
    for (let i = this.queueHead; i < queue.length; i++) {
      const q = queue[i]!
      if (q.sub.shared && !q.sub.closed) orphans.push({ filter: q.sub.filter, event: q.event })
    }
    for (const entry of this.inflight.values()) {
      if (entry.state !== 'publish' || !this.owner.subscriptions.get(entry.filter)?.shared) continue
      orphans.push({
        filter: entry.filter,
        event: entry.event ?? storedEvent(entry),
        packetId: entry.packetId,
      })
    }
    this.queue = null
    this.queueHead = 0
    this.outbox = null
    return orphans
  }

  /** Start-up: an in-flight entry restored from its record (oldest first). */
  restore(entry: InflightEntry): void {
    ;(this.inflightMap ??= new Map()).set(entry.packetId, entry)
    this.nextPacketId = entry.packetId === 65535 ? 1 : entry.packetId + 1
  }
}

/** An in-flight message restored from disk carries no event: rebuilt from its bytes (properties are not kept). */
function storedEvent(entry: InflightEntry): ResourceEvent {
  return {
    type: 'message',
    topic: entry.topic,
    path: '',
    id: entry.topic,
    value: entry.payload,
    timestamp: Date.now() * 1000,
    cursor: 0,
    retained: false,
    meta: { qos: entry.qos },
  }
}
