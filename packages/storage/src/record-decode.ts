import { Packr } from 'msgpackr'

/**
 * Reading a record without msgpackr's general decoder for the common shape `packFlat` writes (record-format.ts):
 * `[timestamp, nodeId, { flat map }, cursor?]` and tombstones `[timestamp, nodeId]`, with ASCII strings.
 * Retained delivery reads every matching record (S4: 100,000 in one range), and msgpackr's reader was a
 * fifth of that CPU. Anything else (nested values, arrays, other number types, non-ASCII text, a
 * `__proto__` key) is handed to msgpackr, so both give the same value for every record.
 */
const NOT_FLAT = Symbol('not flat')

/** Source bytes of the record being read (lmdb-js hands the decoder its shared read buffer). */
let src: Uint8Array = new Uint8Array(0)
let pos = 0
let end = 0

/** Keys seen before cost no string: one slot per first byte and length (field names repeat in every record). */
const keyCache: (string | undefined)[] = new Array(4096)

const float = new Float64Array(1)
const floatBytes = new Uint8Array(float.buffer)
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/** A big-endian float64 at `pos`, through a scratch array (a DataView per read costs an object). */
function readDouble(): number {
  if (littleEndian) for (let i = 7; i >= 0; i--) floatBytes[i] = src[pos++]!
  else for (let i = 0; i < 8; i++) floatBytes[i] = src[pos++]!
  return float[0]!
}

function readUint(bytes: number): number {
  let n = 0
  for (let i = 0; i < bytes; i++) n = n * 256 + src[pos++]!
  return n
}

/** An ASCII string of `length` bytes at `pos`, or NOT_FLAT. */
function readAscii(length: number, key: boolean): string | typeof NOT_FLAT {
  if (pos + length > end) return NOT_FLAT
  const start = pos
  if (key && length > 0 && length <= 16) {
    const slot = (src[start]! << 4) | (length - 1)
    const cached = keyCache[slot]
    if (cached !== undefined && cached.length === length) {
      let same = true
      for (let i = 0; i < length; i++) {
        if (cached.charCodeAt(i) !== src[start + i]) {
          same = false
          break
        }
      }
      if (same) {
        pos += length
        return cached
      }
    }
    const s = readAscii(length, false)
    if (s !== NOT_FLAT) keyCache[slot] = s
    return s
  }
  let s = ''
  for (let i = 0; i < length; i++) {
    const c = src[start + i]!
    if (c >= 0x80) return NOT_FLAT
    s += String.fromCharCode(c)
  }
  pos += length
  return s
}

function readStr(key: boolean): string | typeof NOT_FLAT {
  const b = src[pos++]!
  if ((b & 0xe0) === 0xa0) return readAscii(b & 0x1f, key)
  if (b === 0xd9) return readAscii(readUint(1), key)
  if (b === 0xda) return readAscii(readUint(2), key)
  return NOT_FLAT
}

/** One field value of a flat map: string, number, boolean, null or bytes. */
function readField(): unknown {
  const b = src[pos]!
  if (b < 0x80) {
    pos++
    return b
  }
  if (b >= 0xe0) {
    pos++
    return b - 0x100
  }
  if ((b & 0xe0) === 0xa0 || b === 0xd9 || b === 0xda) return readStr(false)
  pos++
  switch (b) {
    case 0xc0:
      return null
    case 0xc2:
      return false
    case 0xc3:
      return true
    case 0xc4:
    case 0xc5:
    case 0xc6: {
      const length = readUint(b === 0xc4 ? 1 : b === 0xc5 ? 2 : 4)
      if (pos + length > end) return NOT_FLAT
      // a copy, as msgpackr makes with lmdb-js's copyBuffers: the read buffer is reused by the next read
      const bytes = Uint8Array.prototype.slice.call(src, pos, pos + length)
      pos += length
      return bytes
    }
    case 0xcb:
      return readDouble()
    case 0xcc:
      return readUint(1)
    case 0xcd:
      return readUint(2)
    case 0xce:
      return readUint(4)
    case 0xd0:
      return (readUint(1) << 24) >> 24
    case 0xd1:
      return (readUint(2) << 16) >> 16
    case 0xd2:
      return readUint(4) | 0
    default:
      return NOT_FLAT
  }
}

function readFlatMap(): Record<string, unknown> | typeof NOT_FLAT {
  const b = src[pos++]!
  let count: number
  if (b === 0xde) count = readUint(2)
  else if ((b & 0xf0) === 0x80) count = b & 0x0f
  else return NOT_FLAT
  const object: Record<string, unknown> = {}
  for (let i = 0; i < count; i++) {
    if (pos >= end) return NOT_FLAT
    const key = readStr(true)
    if (key === NOT_FLAT || key === '__proto__' || pos >= end) return NOT_FLAT
    const value = readField()
    if (value === NOT_FLAT) return NOT_FLAT
    object[key] = value
  }
  return object
}

/** `[timestamp, nodeId, value?, cursor?]` with a flat map value, or NOT_FLAT. */
function readRecord(): unknown[] | typeof NOT_FLAT {
  const head = src[pos++]!
  if (head < 0x92 || head > 0x94 || end - pos < 14) return NOT_FLAT
  if (src[pos++] !== 0xcb) return NOT_FLAT
  const timestamp = readDouble()
  if (src[pos++] !== 0xce) return NOT_FLAT
  const nodeId = readUint(4)
  if (head === 0x92) return [timestamp, nodeId]
  if (pos >= end) return NOT_FLAT
  const value = readFlatMap()
  if (value === NOT_FLAT) return NOT_FLAT
  if (head === 0x93) return pos === end ? [timestamp, nodeId, value] : NOT_FLAT
  if (end - pos !== 9 || src[pos++] !== 0xcb) return NOT_FLAT
  return [timestamp, nodeId, value, readDouble()]
}

/**
 * The encoder of table databases: lmdb-js's own msgpackr configuration (it constructs this class with
 * its options), reading flat records itself.
 */
export class RecordEncoder extends Packr {
  override decode(source: Uint8Array, options?: number | { start?: number; end?: number }): any {
    if (typeof options === 'number' && options > 0 && options <= source.length) {
      src = source
      pos = 0
      end = options
      const record = readRecord()
      src = EMPTY
      if (record !== NOT_FLAT) return record
    }
    return super.decode(source, options as number)
  }
}

const EMPTY = new Uint8Array(0)
