import {
  copyInto,
  RECORD_HEADER,
  type Scratch,
  type StoredLogEntry,
  type StoredRecord,
  VALUE_IN_RECORD,
} from './record-format.js'

/**
 * Values kept once (format version 2, see record-format.ts): a put's or patch's log entry refers to its
 * record while that version is current, and the write replacing the record gives the entry its value.
 */

/** A live record that carries its log entry's cursor: msgpack fixarray of 4. */
const RECORD_WITH_CURSOR = 0x94
/** The cursor at a record's end: float64 (0xcb and 8 bytes). */
const CURSOR_BYTES = 9

/** A stamped record that also carries the cursor of the log entry that refers to it (a new buffer). */
export function withCursor(record: Buffer, cursor: number, scratch?: Scratch): Buffer {
  const n = record.length
  const out = scratch === undefined ? Buffer.allocUnsafe(n + CURSOR_BYTES) : scratch.take(n + CURSOR_BYTES)
  copyInto(out, 0, record)
  out[0] = RECORD_WITH_CURSOR
  out[n] = 0xcb
  out.writeDoubleBE(cursor, n + 1)
  return out
}

/**
 * The cursor and value bytes of a stored live record whose log entry refers to it, read from its raw
 * bytes (`getBinaryFast`, valid until the next read: the value is copied); undefined for any other.
 */
export function referringEntry(raw: Buffer | undefined): { cursor: number; value: Buffer } | undefined {
  if (raw === undefined || raw[0] !== RECORD_WITH_CURSOR) return undefined
  const end = raw.length - CURSOR_BYTES
  return { cursor: raw.readDoubleBE(end + 1), value: Buffer.from(raw.subarray(RECORD_HEADER, end)) }
}

/**
 * A log entry that refers to its record, rewritten with the record's value inline and the flag cleared
 * (before the record is replaced). Byte surgery on the entry as `encodeLogEntry` wrote it: the value
 * slot is the nil right after the header array.
 */
export function inlineLogValue(entry: Buffer, value: Buffer): Buffer | undefined {
  // [0] the entry's array, [1] the header's fixarray of 6, [2] the type code
  let pos = skipValue(entry, 3) // table
  pos = skipValue(entry, pos) // id
  pos = skipValue(entry, pos + 14) // timestamp (float64) and nodeId (uint32), then user
  // already inline (never expected): nothing to give it
  if (entry[pos] !== 0xc0 || (entry[2]! & VALUE_IN_RECORD) === 0) return undefined
  const out = Buffer.allocUnsafe(entry.length - 1 + value.length)
  entry.copy(out, 0, 0, pos)
  out[2] = entry[2]! & ~VALUE_IN_RECORD
  value.copy(out, pos)
  entry.copy(out, pos + value.length, pos + 1)
  return out
}

/** The position after the MessagePack value at `pos`: strings, nil, booleans, numbers and arrays of them (a log entry's header). */
function skipValue(b: Buffer, pos: number): number {
  const c = b[pos]!
  if (c < 0x80 || c >= 0xe0) return pos + 1
  if ((c & 0xe0) === 0xa0) return pos + 1 + (c & 0x1f)
  if ((c & 0xf0) === 0x90) return skipItems(b, pos + 1, c & 0x0f)
  switch (c) {
    case 0xc0:
    case 0xc2:
    case 0xc3:
      return pos + 1
    case 0xcc:
    case 0xd0:
      return pos + 2
    case 0xcd:
    case 0xd1:
      return pos + 3
    case 0xca:
    case 0xce:
    case 0xd2:
      return pos + 5
    case 0xcb:
    case 0xcf:
    case 0xd3:
      return pos + 9
    case 0xd9:
      return pos + 2 + b[pos + 1]!
    case 0xda:
      return pos + 3 + b.readUInt16BE(pos + 1)
    case 0xdb:
      return pos + 5 + b.readUInt32BE(pos + 1)
    case 0xdc:
      return skipItems(b, pos + 3, b.readUInt16BE(pos + 1))
    case 0xdd:
      return skipItems(b, pos + 5, b.readUInt32BE(pos + 1))
  }
  throw new Error(`unexpected MessagePack code 0x${c.toString(16)} in a log entry header`)
}

function skipItems(b: Buffer, pos: number, n: number): number {
  for (let i = 0; i < n; i++) pos = skipValue(b, pos)
  return pos
}

/** Whether a decoded log entry's value is in its record (see `VALUE_IN_RECORD`). */
export function refersToRecord(entry: StoredLogEntry): boolean {
  return (entry[0][0] & VALUE_IN_RECORD) !== 0
}

/** `entry`'s value, taken from its decoded record; undefined unless the record is the version it refers to. */
export function valueFromRecord(cursor: number, record: StoredRecord | undefined): unknown {
  return record !== undefined && record.length === 4 && record[3] === cursor ? record[2] : undefined
}
