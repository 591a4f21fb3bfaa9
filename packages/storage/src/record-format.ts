import { Packr } from 'msgpackr'
import { InvalidKeyError, InvalidValueError } from './errors.js'
import type { ChangeEvent, ChangeType, Key } from './types.js'

/**
 * On-disk layout (format version 1). Every database uses lmdb-js's msgpack encoding for reads; writes
 * hand lmdb-js bytes we encoded ourselves (`asBinary`) so that a value is encoded, and validated,
 * once, at call time, before anything is queued:
 *
 * - record:    msgpack array [timestamp: float64, nodeId: uint32, value]
 * - tombstone: msgpack array [timestamp: float64, nodeId: uint32]
 * - log entry: msgpack array [[type, table, id, timestamp, nodeId, user], value, patch, meta]
 *
 * The record header has a fixed size, so the value is packed once into a buffer whose header is
 * filled in when the write transaction stamps it.
 */
export const FORMAT_VERSION = 1

export const RECORD_HEADER = 15
const NIL = Buffer.from([0xc0])
const LOG_PREFIX = Buffer.from([0x94])

export const TYPE_CODES: Record<ChangeType, number> = { put: 0, patch: 1, delete: 2, message: 3 }
export const TYPES: readonly ChangeType[] = ['put', 'patch', 'delete', 'message']

/** A decoded record: live when it has three elements, a tombstone when it has two. */
export type StoredRecord = [timestamp: number, nodeId: number, value?: unknown]

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
  try {
    return packr.pack(value)
  } catch (error) {
    throw new InvalidValueError(`value cannot be stored: ${(error as Error).message}`, { cause: error })
  }
}

export function decodeValue(bytes: Buffer): unknown {
  return packr.unpack(bytes)
}

/** Encodes a value into a fresh record buffer with room for the header; `stampRecord` fills it. */
export function encodeRecord(value: unknown): Buffer {
  const packed = encodeValue(value)
  const record = Buffer.allocUnsafe(RECORD_HEADER + packed.length)
  record[0] = 0x93
  record[1] = 0xcb
  record[10] = 0xce
  packed.copy(record, RECORD_HEADER)
  return record
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
): Buffer {
  // pack() returns a view of msgpackr's shared buffer; concat copies it before the next pack
  const header = packr.pack([type, table, id, timestamp, nodeId, user ?? null])
  return Buffer.concat([LOG_PREFIX, header, value ?? NIL, patch ?? NIL, meta ?? NIL])
}

type StoredLogEntry = [
  header: [number, string, Key, number, number, string | null],
  value: unknown,
  patch: unknown,
  meta: Record<string, unknown> | null,
]

export function decodeLogEntry(cursor: number, entry: StoredLogEntry): ChangeEvent {
  const header = entry[0]
  const type = TYPES[header[0]] ?? 'put'
  return {
    type,
    table: header[1],
    id: header[2],
    value: type === 'delete' ? undefined : (entry[1] ?? undefined),
    patch: (entry[2] ?? undefined) as ChangeEvent['patch'],
    timestamp: header[3],
    cursor,
    nodeId: header[4],
    user: header[5] ?? undefined,
    meta: entry[3] ?? undefined,
  }
}

/** Conservative: LMDB's limit is 1978 bytes, ordered-binary adds a few bytes per element. */
const MAX_KEY_BYTES = 1900

/** Throws InvalidKeyError unless `id` can be an LMDB key. Cheap for short string and number keys. */
export function checkKey(id: unknown): asserts id is Key {
  if (typeof id === 'string') {
    if (id.length === 0) throw new InvalidKeyError('empty string keys are not allowed')
    if (id.length > MAX_KEY_BYTES / 3 && Buffer.byteLength(id) > MAX_KEY_BYTES)
      throw new InvalidKeyError(`key is longer than ${MAX_KEY_BYTES} bytes`)
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
    if (bytes > MAX_KEY_BYTES) throw new InvalidKeyError(`key is longer than ${MAX_KEY_BYTES} bytes`)
    return
  }
  throw new InvalidKeyError(
    `invalid key ${String(id)}: use a non-empty string, a finite number or an array of those`,
  )
}

/** A string identity for a key, for Maps (feed dispatch, transaction overlays). */
export function keyString(id: Key): string {
  return typeof id === 'string'
    ? id
    : typeof id === 'number'
      ? `\u0000n${id}`
      : `\u0000a${JSON.stringify(id)}`
}
