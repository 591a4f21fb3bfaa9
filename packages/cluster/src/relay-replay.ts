import { randomInt } from 'node:crypto'
import type { NatsConnection } from '@nats-io/transport-node'
import type { ClusterLog } from './options.js'
import { batchHeader, stampBatch } from './relay-frame.js'

/** How long (ms) and how many bytes of its relayed batches a node keeps to send again. */
const REPLAY_WINDOW_MS = 15_000
const REPLAY_WINDOW_BYTES = 8 * 1024 * 1024
/** What keeping one batch costs beyond its bytes (the entry, the buffer object), counted against the bytes. */
const ENTRY_BYTES = 96
/** How often a node that relayed within the window tells the others its last batch number. */
const TICK_MS = 500
/** How long a receiver holds later batches while it asks for missing ones, before it gives them up. */
const GAP_MS = 5000
/** A replay answer stays under NATS's default 1 MB `max_payload`. */
const ANSWER_BYTES = 900 * 1024

/**
 * The origin's side of the QoS 0 relay's recovery: numbers each batch (with an epoch drawn per start),
 * keeps what it relayed in the last {@link REPLAY_WINDOW_MS} (at most {@link REPLAY_WINDOW_BYTES}), and
 * answers other nodes' requests for batches they missed. Core NATS loses the messages a server held when
 * it died, and those sent to a node while its connection moves to another server; with this, a NATS
 * server lost changes only the latency of QoS 0 messages.
 */
export class RelayHistory {
  readonly epoch = randomInt(1, 0xffffffff)
  #seq = 0
  #sentAt = Number.NEGATIVE_INFINITY
  #ring: { seq: number; bytes: Uint8Array; at: number }[] = []
  #head = 0
  #bytes = 0

  /** Numbers a batch about to be sent and keeps a copy; returns it (stamped in place). */
  stamp(bytes: Uint8Array): Uint8Array {
    const now = Date.now()
    this.#seq = (this.#seq + 1) >>> 0 || 1
    stampBatch(bytes, this.epoch, this.#seq)
    this.#sentAt = now
    // a copy of its own size: the batch's buffer is larger than what it holds
    this.#ring.push({ seq: this.#seq, bytes: Buffer.from(bytes), at: now })
    this.#bytes += bytes.length + ENTRY_BYTES
    while (this.#head < this.#ring.length) {
      const oldest = this.#ring[this.#head]!
      if (this.#bytes <= REPLAY_WINDOW_BYTES && oldest.at >= now - REPLAY_WINDOW_MS) break
      this.#bytes -= oldest.bytes.length + ENTRY_BYTES
      this.#ring[this.#head++] = undefined as never
    }
    if (this.#head > 1024 && this.#head * 2 > this.#ring.length) {
      this.#ring = this.#ring.slice(this.#head)
      this.#head = 0
    }
    return bytes
  }

  /** The number of the last batch sent (0: none), while within the window; undefined after it. */
  lastWithinWindow(): number | undefined {
    return Date.now() - this.#sentAt <= REPLAY_WINDOW_MS ? this.#seq : undefined
  }

  /**
   * The kept batches numbered `from` to `to` (of this epoch), as one reply: `u8 more` (1: the rest did
   * not fit, ask again), then `u32 length` + batch for each.
   */
  answer(epoch: number, from: number, to: number): Uint8Array {
    const found: Uint8Array[] = []
    let size = 1
    let more = 0
    if (epoch === this.epoch)
      for (let i = this.#head; i < this.#ring.length; i++) {
        const kept = this.#ring[i]!
        if (kept.seq < from || kept.seq > to) continue
        if (size + 4 + kept.bytes.length > ANSWER_BYTES && found.length > 0) {
          more = 1
          break
        }
        found.push(kept.bytes)
        size += 4 + kept.bytes.length
      }
    const reply = Buffer.allocUnsafe(size)
    reply[0] = more
    let at = 1
    for (const bytes of found) {
      reply.writeUInt32BE(bytes.length, at)
      reply.set(bytes, at + 4)
      at += 4 + bytes.length
    }
    return reply
  }
}

/**
 * On the relay's connection: tells the other nodes this node's last batch number every {@link TICK_MS}
 * while it relayed within the window (`<prefix>.qs.<node id>`: a receiver that missed the last batches
 * before a quiet spell learns it so), hands their ticks to `gaps`, and answers their requests for this
 * node's batches (`<prefix>.qr.<node id>`). Returns the function that stops all three.
 */
export function serveReplays(
  nats: NatsConnection,
  prefix: string,
  nodeId: number,
  history: RelayHistory,
  gaps: RelayGaps,
): () => void {
  const ticks = nats.subscribe(`${prefix}.qs.*`, {
    callback: (error, msg) => {
      const origin = Number(msg?.subject.slice(prefix.length + 4))
      if (error || origin === nodeId) return
      const { epoch, last } = decodeTick(msg.data)
      gaps.tick(origin, epoch, last)
    },
  })
  const replays = nats.subscribe(`${prefix}.qr.${nodeId}`, {
    callback: (error, msg) => {
      if (error) return
      const { epoch, from, to } = decodeRequest(msg.data)
      msg.respond(history.answer(epoch, from, to))
    },
  })
  const timer = setInterval(() => {
    const last = history.lastWithinWindow()
    if (last === undefined || last === 0 || nats.isClosed()) return
    nats.publish(`${prefix}.qs.${nodeId}`, encodeTick(history.epoch, last))
  }, TICK_MS)
  timer.unref()
  return () => {
    clearInterval(timer)
    ticks.unsubscribe()
    replays.unsubscribe()
  }
}

/** `{ epoch, from, to }` of a replay request. */
function encodeRequest(epoch: number, from: number, to: number): Uint8Array {
  const b = Buffer.allocUnsafe(12)
  b.writeUInt32BE(epoch, 0)
  b.writeUInt32BE(from, 4)
  b.writeUInt32BE(to, 8)
  return b
}

function decodeRequest(data: Uint8Array): { epoch: number; from: number; to: number } {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  return { epoch: b.readUInt32BE(0), from: b.readUInt32BE(4), to: b.readUInt32BE(8) }
}

/** A tick: the origin's epoch and the number of its last batch. */
function encodeTick(epoch: number, last: number): Uint8Array {
  const b = Buffer.allocUnsafe(8)
  b.writeUInt32BE(epoch, 0)
  b.writeUInt32BE(last, 4)
  return b
}

function decodeTick(data: Uint8Array): { epoch: number; last: number } {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  return { epoch: b.readUInt32BE(0), last: b.readUInt32BE(4) }
}

interface Origin {
  epoch: number
  /** The lowest batch number not delivered yet. */
  next: number
  /** Batches after a gap, delivered once the gap is filled (or given up). */
  held: Map<number, Uint8Array>
  /** The highest batch number an origin's tick named. */
  ticked: number
  filling: boolean
}

/**
 * The receiver's side: delivers each origin's batches once and in order. A batch after a gap (or a tick
 * naming a batch not received) makes it ask the origin for the missing ones
 * (`<prefix>.qr.<origin id>`), holding later batches meanwhile; what the origin no longer has, or cannot
 * send within {@link GAP_MS}, is given up (logged) and the held batches go on.
 */
export class RelayGaps {
  readonly #origins = new Map<number, Origin>()
  #closed = false

  constructor(
    private readonly nats: NatsConnection,
    private readonly prefix: string,
    private readonly log: ClusterLog,
    private readonly deliverBatch: (batch: Uint8Array) => void,
  ) {}

  /** One batch to this node's subscribers; a batch that fails is logged and the next ones go on. */
  private deliver(batch: Uint8Array): void {
    try {
      this.deliverBatch(batch)
    } catch (err) {
      this.log.warn({ err }, 'cluster: a relayed message could not be delivered')
    }
  }

  /** A batch as it came (live or replayed). */
  receive(batch: Uint8Array): void {
    const { origin, epoch, seq } = batchHeader(batch)
    let o = this.#origins.get(origin)
    if (o === undefined || o.epoch !== epoch) {
      // an origin first heard of, or started again: its batches count from here
      o = { epoch, next: seq, held: new Map(), ticked: 0, filling: false }
      this.#origins.set(origin, o)
    }
    if (seq < o.next || o.held.has(seq)) return
    if (seq !== o.next) {
      o.held.set(seq, batch)
      this.#fill(origin, o)
      return
    }
    this.deliver(batch)
    o.next = seq + 1
    this.#drain(o)
  }

  /** An origin's tick: asks for what it sent and this node did not receive. */
  tick(origin: number, epoch: number, last: number): void {
    const o = this.#origins.get(origin)
    if (o === undefined || o.epoch !== epoch) {
      // nothing received from this run of the origin yet: what it sent before now is not asked for
      this.#origins.set(origin, { epoch, next: last + 1, held: new Map(), ticked: last, filling: false })
      return
    }
    o.ticked = Math.max(o.ticked, last)
    if (o.ticked >= o.next) this.#fill(origin, o)
  }

  close(): void {
    this.#closed = true
  }

  #drain(o: Origin): void {
    for (let batch = o.held.get(o.next); batch !== undefined; batch = o.held.get(o.next)) {
      o.held.delete(o.next)
      this.deliver(batch)
      o.next++
    }
  }

  /** The last missing batch number before the held ones (or up to the tick), or undefined: no gap. */
  #gapEnd(o: Origin): number | undefined {
    let end = o.ticked
    if (o.held.size > 0) {
      let first = Number.POSITIVE_INFINITY
      for (const seq of o.held.keys()) if (seq < first) first = seq
      end = first - 1
    }
    return end >= o.next ? end : undefined
  }

  #fill(origin: number, o: Origin): void {
    if (o.filling) return
    o.filling = true
    this.#ask(origin, o)
      .catch((err) => this.log.warn({ err, origin }, 'cluster: asking for relayed QoS 0 batches failed'))
      .finally(() => {
        o.filling = false
      })
  }

  async #ask(origin: number, o: Origin): Promise<void> {
    let deadline = Date.now() + GAP_MS
    const subject = `${this.prefix}.qr.${origin}`
    for (let end = this.#gapEnd(o); end !== undefined; end = this.#gapEnd(o)) {
      if (this.#closed || this.#origins.get(origin) !== o) return
      if (Date.now() > deadline) {
        this.#giveUp(origin, o, end)
        deadline = Date.now() + GAP_MS
        continue
      }
      const from = o.next
      let reply: Uint8Array
      try {
        reply = (await this.nats.request(subject, encodeRequest(o.epoch, from, end), { timeout: 1000 })).data
      } catch {
        // the origin is not reachable yet (its connection moving to another server) or gone
        await new Promise((resolve) => setTimeout(resolve, 200))
        continue
      }
      const b = Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength)
      this.log.info(
        { origin, from, to: end, bytes: b.length - 1 },
        'cluster: relayed QoS 0 batches asked for again',
      )
      for (let at = 1; at + 4 <= b.length; ) {
        const n = b.readUInt32BE(at)
        this.receive(b.subarray(at + 4, at + 4 + n))
        at += 4 + n
      }
      // what the origin did not send back it no longer has
      if (b[0] !== 1 && this.#origins.get(origin) === o && o.next <= end) this.#giveUp(origin, o, end)
    }
  }

  #giveUp(origin: number, o: Origin, end: number): void {
    this.log.warn(
      { origin, from: o.next, to: end },
      'cluster: relayed QoS 0 messages were lost (their batches are no longer held by their node)',
    )
    o.next = end + 1
    this.#drain(o)
  }
}
