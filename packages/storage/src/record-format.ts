import { Packr } from 'msgpackr'
import { InvalidKeyError, InvalidValueError, KeyTooLongError } from './errors.js'
import type { ChangeEvent, ChangeType, Key } from './types.js'

/**
 * On-disk layout (format version 2). Every database uses lmdb-js's msgpack encoding for reads; writes
 * hand lmdb-js bytes we encoded ourselves (`asBinary`) so that a value is encoded, and validated,
 * once, at call time, before anything is queued:
 *
 * - record:    msgpack array [timestamp: float64, nodeId: uint32, value, cursor?: float64]
 * - tombstone: msgpack array [timestamp: float64, nodeId: uint32]
 * - log entry: msgpack array [[type, table, id, timestamp, nodeId, user], value, patch, meta, previous?]
 *   (`previous`, on tables that keep it: `[value]` of the record the write replaced, `[]` for none)
 *
 * A put or patch keeps its value once: its log entry's type has `VALUE_IN_RECORD` set and its value is
 * nil, and the record carries the entry's cursor. While that version is current, a reader of the log
 * takes the value from the record; the write that replaces the record (put, patch or delete, in the
 * same transaction) first copies the value into the entry (`inlineLogValue`) and clears the flag.
 * Writes inside `store.transaction()` log their values inline, as format version 1 did for all; format 1
 * files are read as they are (no flags, no cursors in records).
 *
 * The record header has a fixed size, so the value is packed once into a buffer whose header is
 * filled in when the write transaction stamps it.
 */
export const FORMAT_VERSION = 2
/** Earlier formats this version reads as they are (the store then records FORMAT_VERSION). */
export const READABLE_FORMATS: readonly number[] = [1]
/** Set in a log entry's type code: the value is in the record, which carries the entry's cursor (log-values.ts). */
export const VALUE_IN_RECORD = 0x08

export const RECORD_HEADER = 15

/** Change types by the code a log entry stores (the index). */
export const TYPES: readonly ChangeType[] = ['put', 'patch', 'delete', 'message']

/**
 * A decoded record: live when it has three or four elements (the fourth: the cursor of the log entry
 * whose value it holds), a tombstone when it has two.
 */
export type StoredRecord = [timestamp: number, nodeId: number, value?: unknown, cursor?: number]

const packr = new Packr({
  useRecords: false,
  // msgpackr silently stores functions as undefined; a value that cannot round-trip must fail instead
  writeFunction() {
    throw new TypeError('functions cannot be stored')
  },
})

/** Encodes a value; throws InvalidValueError when it cannot be stored. */
export function encodeValue(value: unknown): Buffer {
  if (value === undefined) throw new InvalidValueError('undefined cannot be stored (use delete)')
  if (value !== null && typeof value === 'object') {
    const flat = packFlat(value, false)
    if (flat !== undefined) return flat
  }
  return pack(value)
}

function pack(value: unknown): Buffer {
  try {
    return packr.pack(value)
  } catch (error) {
    throw new InvalidValueError(`value cannot be stored: ${(error as Error).message}`, { cause: error })
  }
}

export function decodeValue(bytes: Buffer): unknown {
  return packr.unpack(bytes)
}

/**
 * Encodes a value into a record buffer with room for the header; `stampRecord` fills it. The header
 * placeholders pack as exactly `[float64, uint32, …]` (0.5 is not an integer, 2^32-1 needs 32 bits), so
 * the record is one pack, without a second buffer and copy.
 */
export function encodeRecord(value: unknown): Buffer {
  if (value === undefined) throw new InvalidValueError('undefined cannot be stored (use delete)')
  if (value !== null && typeof value === 'object') {
    const flat = packFlat(value, true)
    if (flat !== undefined) return flat
  }
  return pack([0.5, 0xffffffff, value])
}

/** An object literal or `Object.create(null)`: no class instance, array, Date or Buffer. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

let slab = Buffer.allocUnsafeSlow(0)
let slabPos = 0

/**
 * The common value, a flat plain object of strings, numbers, booleans, nulls and bytes (a topic
 * message `{ payload, contentType }`, a publish's meta `{ qos, clientId }`), packed by hand: the same
 * MessagePack msgpackr writes, read back identically, at a fraction of the cost. Returns undefined for
 * anything else (msgpackr packs it). With `header`, the record header's placeholder comes first.
 */
function packFlat(value: object, header: boolean): Buffer | undefined {
  if (!isPlainObject(value)) return undefined
  // first pass: check every field and bound the size
  let count = 0
  let bound = header ? RECORD_HEADER + 3 : 3
  const obj = value as Record<string, unknown>
  for (const key in obj) {
    const v = obj[key]
    if (typeof v === 'string') bound += v.length * 3 + 5
    else if (typeof v === 'number') bound += 9
    else if (typeof v === 'boolean' || v === null) bound += 1
    else if (v instanceof Uint8Array) bound += v.length + 5
    else return undefined
    bound += key.length * 3 + 5
    if (++count > 0xffff) return undefined
  }
  if (slab.length - slabPos < bound) {
    slab = Buffer.allocUnsafeSlow(Math.max(0x10000, bound))
    slabPos = 0
  }
  const out = slab
  const start = slabPos
  let pos = start
  if (header) {
    out[pos] = 0x93
    out[pos + 1] = 0xcb
    out[pos + 10] = 0xce
    pos += RECORD_HEADER
  }
  // msgpackr (without variableMapSize) always writes a map16 header, whatever the field count
  out[pos++] = 0xde
  out[pos++] = count >> 8
  out[pos++] = count & 0xff
  for (const key in obj) {
    pos = writeStr(out, pos, key, utf8Length(key))
    const v = obj[key]
    if (typeof v === 'string') pos = writeStr(out, pos, v, utf8Length(v))
    else if (typeof v === 'number') pos = writeNumber(out, pos, v)
    else if (v === null) out[pos++] = 0xc0
    else if (v === true) out[pos++] = 0xc3
    else if (v === false) out[pos++] = 0xc2
    else {
      const bytes = v as Uint8Array
      const n = bytes.length
      pos = writeSized(out, pos, n, BIN8)
      if (n > 64) out.set(bytes, pos)
      else for (let i = 0; i < n; i++) out[pos + i] = bytes[i]!
      pos += n
    }
  }
  // the next value starts on an 8-byte boundary
  slabPos = (pos + 7) & ~7
  return out.subarray(start, pos)
}

// MessagePack types whose 16- and 32-bit forms are the next two codes
const BIN8 = 0xc4
const UINT8 = 0xcc
const STR8 = 0xd9

/** Writes `code8` with `n` in 8 bits, or the next code with 16, or the one after with 32. */
function writeSized(out: Buffer, pos: number, n: number, code8: number): number {
  if (n < 0x100) {
    out[pos] = code8
    out[pos + 1] = n
    return pos + 2
  }
  if (n < 0x10000) {
    out[pos] = code8 + 1
    out.writeUInt16BE(n, pos + 1)
    return pos + 3
  }
  out[pos] = code8 + 2
  out.writeUInt32BE(n, pos + 1)
  return pos + 5
}

/** A number as msgpackr writes it: the smallest integer type that holds it, else a float64. */
function writeNumber(out: Buffer, pos: number, v: number): number {
  if (v >>> 0 === v) {
    if (v < 0x80) out[pos++] = v
    else pos = writeSized(out, pos, v, UINT8)
    return pos
  }
  if (v >> 0 === v) {
    if (v >= -0x20) out[pos++] = 0x100 + v
    else if (v >= -0x80) {
      out[pos++] = 0xd0
      out[pos++] = 0x100 + v
    } else if (v >= -0x8000) {
      out[pos++] = 0xd1
      out.writeInt16BE(v, pos)
      pos += 2
    } else {
      out[pos++] = 0xd2
      out.writeInt32BE(v, pos)
      pos += 4
    }
    return pos
  }
  out[pos] = 0xcb
  out.writeDoubleBE(v, pos + 1)
  return pos + 9
}

export function stampRecord(record: Buffer, timestamp: number, nodeId: number): Buffer {
  record.writeDoubleBE(timestamp, 2)
  record.writeUInt32BE(nodeId, 11)
  return record
}

export function encodeTombstone(timestamp: number, nodeId: number): Buffer {
  const record = Buffer.allocUnsafe(RECORD_HEADER)
  record[0] = 0x92
  record[1] = 0xcb
  record[10] = 0xce
  return stampRecord(record, timestamp, nodeId)
}

export function encodeLogEntry(
  type: number,
  table: string,
  id: Key,
  timestamp: number,
  nodeId: number,
  user: string | undefined,
  value: Buffer | undefined,
  patch: Buffer | undefined,
  meta: Buffer | undefined,
  previous?: Buffer,
  scratch?: Scratch,
): Buffer {
  // One buffer written by hand: [[type, table, id, timestamp, nodeId, user], value, patch, meta, previous?].
  // Non-string ids are packed by msgpackr (pack() returns a view of its shared buffer: copied below).
  const tableBytes = utf8Length(table)
  const idPacked = typeof id === 'string' ? undefined : packr.pack(id)
  const idBytes = idPacked === undefined ? utf8Length(id as string) : idPacked.length
  const userBytes = user === undefined ? -1 : utf8Length(user)
  const size =
    2 +
    1 +
    strHeader(tableBytes) +
    tableBytes +
    (idPacked === undefined ? strHeader(idBytes) : 0) +
    idBytes +
    9 +
    5 +
    (userBytes < 0 ? 1 : strHeader(userBytes) + userBytes) +
    (value === undefined ? 1 : value.length) +
    (patch === undefined ? 1 : patch.length) +
    (meta === undefined ? 1 : meta.length) +
    (previous === undefined ? 0 : previous.length)
  const out = scratch === undefined ? Buffer.allocUnsafe(size) : scratch.take(size)
  out[0] = previous === undefined ? 0x94 : 0x95
  out[1] = 0x96
  out[2] = type
  let pos = writeStr(out, 3, table, tableBytes)
  if (idPacked === undefined) pos = writeStr(out, pos, id as string, idBytes)
  else pos = copyInto(out, pos, idPacked)
  out[pos] = 0xcb
  out.writeDoubleBE(timestamp, pos + 1)
  out[pos + 9] = 0xce
  out.writeUInt32BE(nodeId, pos + 10)
  pos += 14
  if (user === undefined) out[pos++] = 0xc0
  else pos = writeStr(out, pos, user, userBytes)
  if (value === undefined) out[pos++] = 0xc0
  else pos = copyInto(out, pos, value)
  if (patch === undefined) out[pos++] = 0xc0
  else pos = copyInto(out, pos, patch)
  if (meta === undefined) out[pos++] = 0xc0
  else pos = copyInto(out, pos, meta)
  if (previous !== undefined) copyInto(out, pos, previous)
  return out
}

/**
 * One buffer reused for every value written right after it is encoded (a write's own log entry or
 * record, inside the transaction): lmdb-js copies a value into the page during `putSync`, and reads a
 * buffer's `start` and `end` (msgpackr's convention) as the bytes to write, so it costs no allocation.
 */
export class Scratch {
  private buf: Buffer & { start: number; end: number } = Scratch.alloc(4096)

  /** The scratch buffer with `start`/`end` covering `size` bytes from offset 0 (valid until the next take). */
  take(size: number): Buffer {
    if (size > this.buf.length) this.buf = Scratch.alloc(Math.max(size, this.buf.length * 2))
    const buf = this.buf
    buf.end = size
    return buf
  }

  private static alloc(size: number): Buffer & { start: number; end: number } {
    // its own ArrayBuffer at offset 0: lmdb-js takes the address of `buffer` plus `start`
    const buf = Buffer.allocUnsafeSlow(size) as Buffer & { start: number; end: number }
    buf.start = 0
    buf.end = 0
    return buf
  }
}

function strHeader(bytes: number): number {
  return bytes < 32 ? 1 : bytes < 0x100 ? 2 : bytes < 0x10000 ? 3 : 5
}

/** Writes a msgpack str of `bytes` UTF-8 bytes at `pos`; returns the position after it. */
function writeStr(out: Buffer, pos: number, s: string, bytes: number): number {
  if (bytes < 32) out[pos++] = 0xa0 | bytes
  else pos = writeSized(out, pos, bytes, STR8)
  // msgpackr writes strings under 64 chars with this loop and longer ones with Buffer's utf8Write;
  // they differ on a lone surrogate (its own 3 bytes here, U+FFFD there), so both are copied as is
  const n = s.length
  if (n >= 0x40) return pos + out.write(s, pos, bytes, 'utf8')
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i)
    let next: number
    if (c < 0x80) out[pos++] = c
    else if (c < 0x800) {
      out[pos++] = (c >> 6) | 0xc0
      out[pos++] = (c & 0x3f) | 0x80
    } else if ((c & 0xfc00) === 0xd800 && ((next = s.charCodeAt(i + 1)) & 0xfc00) === 0xdc00) {
      c = 0x10000 + ((c & 0x3ff) << 10) + (next & 0x3ff)
      i++
      out[pos++] = (c >> 18) | 0xf0
      out[pos++] = ((c >> 12) & 0x3f) | 0x80
      out[pos++] = ((c >> 6) & 0x3f) | 0x80
      out[pos++] = (c & 0x3f) | 0x80
    } else {
      out[pos++] = (c >> 12) | 0xe0
      out[pos++] = ((c >> 6) & 0x3f) | 0x80
      out[pos++] = (c & 0x3f) | 0x80
    }
  }
  return pos
}

/** UTF-8 length of a string; short ASCII strings without a call into C++. */
function utf8Length(s: string): number {
  const n = s.length
  if (n > 64) return Buffer.byteLength(s)
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) > 0x7f) return Buffer.byteLength(s)
  return n
}

/** Copies `src` into `out` at `pos`; small buffers by a loop (cheaper than `copy` below ~64 bytes). */
export function copyInto(out: Buffer, pos: number, src: Buffer): number {
  const n = src.length
  if (n > 64) return pos + src.copy(out, pos)
  for (let i = 0; i < n; i++) out[pos + i] = src[i]!
  return pos + n
}

export type StoredLogEntry = [
  header: [number, string, Key, number, number, string | null],
  value: unknown,
  patch: unknown,
  meta: Record<string, unknown> | null,
  previous?: [unknown?],
]

/** Decodes a log entry; one that refers to its record takes `value` (the record's) instead of its own. */
export function decodeLogEntry(cursor: number, entry: StoredLogEntry, value?: unknown): ChangeEvent {
  const header = entry[0]
  const type = TYPES[header[0] & ~VALUE_IN_RECORD] ?? 'put'
  const previous = entry[4]
  const event: ChangeEvent = {
    type,
    table: header[1],
    id: header[2],
    value: type === 'delete' ? undefined : ((value !== undefined ? value : entry[1]) ?? undefined),
    patch: (entry[2] ?? undefined) as ChangeEvent['patch'],
    timestamp: header[3],
    cursor,
    nodeId: header[4],
    user: header[5] ?? undefined,
    meta: entry[3] ?? undefined,
  }
  if (previous !== undefined) event.previous = previous.length === 0 ? null : { value: previous[0] }
  return event
}

/** Conservative: LMDB's limit is 1978 bytes, ordered-binary adds a few bytes per element. */
const MAX_KEY_BYTES = 1900

/** Throws InvalidKeyError (KeyTooLongError past MAX_KEY_BYTES) unless `id` can be an LMDB key. Cheap for short string and number keys. */
export function checkKey(id: unknown): asserts id is Key {
  if (typeof id === 'string') {
    if (id.length === 0) throw new InvalidKeyError('empty string keys are not allowed')
    if (id.length > MAX_KEY_BYTES / 3 && Buffer.byteLength(id) > MAX_KEY_BYTES)
      throw new KeyTooLongError(MAX_KEY_BYTES)
    return
  }
  if (typeof id === 'number') {
    if (!Number.isFinite(id)) throw new InvalidKeyError(`key must be a finite number, got ${id}`)
    return
  }
  if (Array.isArray(id) && id.length > 0) {
    let bytes = 0
    for (const part of id) {
      if (typeof part === 'string') bytes += Buffer.byteLength(part) + 1
      else if (typeof part === 'number' && Number.isFinite(part)) bytes += 10
      else throw new InvalidKeyError('array keys may only hold strings and finite numbers')
    }
    if (bytes > MAX_KEY_BYTES) throw new KeyTooLongError(MAX_KEY_BYTES)
    return
  }
  throw new InvalidKeyError(
    `invalid key ${String(id)}: use a non-empty string, a finite number or an array of those`,
  )
}

/** Whether `id` can be a key (within LMDB's key size, of a key type): checkKey without the throw. */
export function isValidKey(id: unknown): id is Key {
  try {
    checkKey(id)
    return true
  } catch {
    return false
  }
}

/** A string identity for a key, for Maps (feed dispatch, transaction overlays). */
export function keyString(id: Key): string {
  return typeof id === 'string'
    ? id
    : typeof id === 'number'
      ? `\u0000n${id}`
      : `\u0000a${JSON.stringify(id)}`
}
