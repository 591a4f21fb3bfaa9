import { type EventMeta, RuntimeEvent } from '@proj/resource'
import { Packr } from 'msgpackr'

/**
 * The relay's wire format: one NATS message carries a batch of QoS 0 events (those one node relays on
 * one subject in one event-loop turn), in order. A generic encoding of each event as an array cost the
 * publishing node about 18 µs a message (profiled), most of it for fields that are nearly always the same;
 * this frame writes the common fields as raw bytes and keeps msgpack for the rare ones (an id that is
 * not the topic, a `value` without payload bytes, meta with more than `qos` and `clientId`).
 *
 * Batch: `u8 version (2)`, `u32 origin node id`, `u32 epoch` and `u32 number` (the origin's relay run
 * and the batch's place in it, `relay-replay.ts`), then frames until the end. Frame: `str type`,
 * `str topic`, `str path`, `u8 idTag` (0: the topic, 1: `str`, 2: `blob` msgpack), `f64 timestamp`,
 * `nstr user`, `nstr origin`, `nstr contentType`, `u8 body` (0: none, 1: payload `blob`, 2: value `blob`
 * msgpack), `u8 metaTag` (0: none, 1: `u8 qos` + `nstr clientId`, 2: `blob` msgpack), `u16 shared count`
 * + `str key`, `str node` each. `str`/`blob`: `u32` length + bytes (UTF-8); `nstr`: length 0xFFFFFFFF
 * is `undefined`.
 */

const VERSION = 2
/** Version, origin, epoch, number. */
const HEADER_BYTES = 13
const NONE = 0xffffffff
const packr = new Packr({ useRecords: false, mapsAsObjects: true })

/** Node's own UTF-8 string copies (not in @types/node; `toString`/`write` check their arguments first). */
interface Utf8Buffer {
  utf8Write(text: string, offset: number): number
  utf8Slice(start: number, end: number): string
}

export type SharedChoice = [key: string, node: string][] | null

/** Appends frames to a growing buffer; `bytes()` is the batch so far (the buffer is not reused). */
export class FrameWriter {
  #buf: Buffer
  #at = 0
  /** Number of frames written. */
  count = 0

  constructor(nodeId: number, size = 1024) {
    // under 4 KiB: a slice of Node's shared pool, not an allocation of its own
    this.#buf = Buffer.allocUnsafe(size)
    this.#buf[0] = VERSION
    this.#buf.writeUInt32BE(nodeId >>> 0, 1)
    // epoch and number: stamped when the batch is sent
    this.#buf.fill(0, 5, HEADER_BYTES)
    this.#at = HEADER_BYTES
  }

  get length(): number {
    return this.#at
  }

  bytes(): Uint8Array {
    return this.#buf.subarray(0, this.#at)
  }

  /** Appends one event; when it throws (a value msgpack cannot encode) the batch is as it was. */
  write(event: RuntimeEvent, shared: SharedChoice): void {
    const start = this.#at
    try {
      this.#frame(event, shared)
    } catch (error) {
      this.#at = start
      throw error
    }
    this.count++
  }

  #frame(event: RuntimeEvent, shared: SharedChoice): void {
    this.#str(event.type)
    this.#str(event.topic)
    this.#str(event.path)
    const id = event.id
    if (id === event.topic) this.#u8(0)
    else if (typeof id === 'string') {
      this.#u8(1)
      this.#str(id)
    } else {
      this.#u8(2)
      this.#blob(packr.pack(id))
    }
    this.#room(8)
    this.#buf.writeDoubleBE(event.timestamp, this.#at)
    this.#at += 8
    this.#nstr(event.user)
    this.#nstr(event.origin)
    this.#nstr(event.contentType)
    if (event.payload !== undefined) {
      this.#u8(1)
      this.#blob(event.payload)
    } else {
      const value = event.value
      if (value === undefined) this.#u8(0)
      else {
        this.#u8(2)
        this.#blob(packr.pack(value))
      }
    }
    const meta = event.meta
    if (meta === undefined) this.#u8(0)
    else if (isPlain(meta)) {
      this.#u8(1)
      this.#u8(meta.qos!)
      this.#nstr(meta.clientId)
    } else {
      this.#u8(2)
      this.#blob(packr.pack(meta))
    }
    const n = shared?.length ?? 0
    this.#room(2)
    this.#buf.writeUInt16BE(n, this.#at)
    this.#at += 2
    for (let i = 0; i < n; i++) {
      this.#str(shared![i]![0])
      this.#str(shared![i]![1])
    }
  }

  #room(n: number): void {
    if (this.#at + n <= this.#buf.length) return
    const bigger = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#at + n))
    this.#buf.copy(bigger, 0, 0, this.#at)
    this.#buf = bigger
  }

  #u8(v: number): void {
    this.#room(1)
    this.#buf[this.#at++] = v
  }

  #str(s: string): void {
    this.#room(4 + s.length * 3)
    const n = (this.#buf as unknown as Utf8Buffer).utf8Write(s, this.#at + 4)
    this.#buf.writeUInt32BE(n, this.#at)
    this.#at += 4 + n
  }

  #nstr(s: string | undefined): void {
    if (s === undefined) {
      this.#room(4)
      this.#buf.writeUInt32BE(NONE, this.#at)
      this.#at += 4
    } else this.#str(s)
  }

  #blob(b: Uint8Array): void {
    this.#room(4 + b.length)
    this.#buf.writeUInt32BE(b.length, this.#at)
    this.#buf.set(b, this.#at + 4)
    this.#at += 4 + b.length
  }
}

/** `{ qos, clientId? }` and nothing else: the meta of every MQTT publish without properties. */
function isPlain(meta: EventMeta): boolean {
  const qos = meta.qos
  if (qos !== 0 && qos !== 1 && qos !== 2) return false
  let keys = 0
  for (const key in meta) {
    if (key !== 'qos' && key !== 'clientId') return false
    keys++
  }
  return keys === 1 || typeof meta.clientId === 'string'
}

/** A batch's origin node id; throws on a version this node does not know. */
export function frameOrigin(data: Uint8Array): number {
  if (data.length < HEADER_BYTES || data[0] !== VERSION)
    throw new TypeError(`relay frame version ${data[0]} is not ${VERSION}`)
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).readUInt32BE(1)
}

/** A batch's origin node id, its origin's relay epoch and the batch's number in it. */
export function batchHeader(data: Uint8Array): { origin: number; epoch: number; seq: number } {
  const origin = frameOrigin(data)
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  return { origin, epoch: b.readUInt32BE(5), seq: b.readUInt32BE(9) }
}

/** Writes the epoch and number into a batch's header (as it is sent). */
export function stampBatch(data: Uint8Array, epoch: number, seq: number): void {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  b.writeUInt32BE(epoch >>> 0, 5)
  b.writeUInt32BE(seq >>> 0, 9)
}

/** Reads a batch's events in order; calls `each` with every event and its shared-group choices. */
export function readFrames(
  data: Uint8Array,
  each: (event: RuntimeEvent, shared: SharedChoice) => void,
): void {
  frameOrigin(data)
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  const text = buf as unknown as Utf8Buffer
  let at = HEADER_BYTES
  const need = (n: number) => {
    if (at + n > buf.length) throw new RangeError('relay frame truncated')
  }
  const u8 = () => {
    need(1)
    return buf[at++]!
  }
  const u32 = () => {
    need(4)
    const v = buf.readUInt32BE(at)
    at += 4
    return v
  }
  const utf8 = (n: number) => {
    need(n)
    const s = text.utf8Slice(at, at + n)
    at += n
    return s
  }
  const str = () => utf8(u32())
  const nstr = () => {
    const n = u32()
    return n === NONE ? undefined : utf8(n)
  }
  const blob = () => {
    const n = u32()
    need(n)
    // a view, no copy: NATS hands each message a buffer of its own (a socket read is never reused)
    const b = buf.subarray(at, at + n)
    at += n
    return b
  }
  const msgpack = () => {
    const n = u32()
    need(n)
    const v = packr.unpack(buf.subarray(at, at + n))
    at += n
    return v
  }
  while (at < buf.length) {
    const type = str() as RuntimeEvent['type']
    const topic = str()
    const path = str()
    const idTag = u8()
    const id = idTag === 0 ? topic : idTag === 1 ? str() : msgpack()
    need(8)
    const timestamp = buf.readDoubleBE(at)
    at += 8
    const user = nstr()
    const origin = nstr()
    const contentType = nstr()
    const body = u8()
    const payload = body === 1 ? blob() : undefined
    const value = body === 2 ? msgpack() : undefined
    const metaTag = u8()
    let meta: EventMeta | undefined
    if (metaTag === 1) {
      const qos = u8() as 0 | 1 | 2
      const clientId = nstr()
      meta = clientId === undefined ? { qos } : { qos, clientId }
    } else if (metaTag === 2) meta = msgpack()
    need(2)
    const n = buf.readUInt16BE(at)
    at += 2
    let shared: SharedChoice = null
    if (n > 0) {
      shared = []
      for (let i = 0; i < n; i++) shared.push([str(), str()])
    }
    const event = new RuntimeEvent(type, topic, path, id, timestamp, 0, user, false, meta)
    if (origin !== undefined) event.origin = origin
    if (payload !== undefined) event.setPayload(payload, contentType)
    else if (body === 2) event.value = value
    each(event, shared)
  }
}
