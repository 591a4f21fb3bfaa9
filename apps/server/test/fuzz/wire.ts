/** MQTT framing at the byte level: the fixed header's variable-length integer, and walking frames. */

export function encodeVarint(value: number): Buffer {
  const out: number[] = []
  let v = value
  do {
    let byte = v % 128
    v = Math.floor(v / 128)
    if (v > 0) byte |= 0x80
    out.push(byte)
  } while (v > 0 && out.length < 4)
  return Buffer.from(out)
}

/** The variable-length integer at `offset`: its value and size, or why it cannot be read. */
export function readVarint(
  buf: Buffer,
  offset: number,
): { value: number; size: number } | 'short' | 'malformed' {
  let value = 0
  let mul = 1
  for (let i = 0; i < 4; i++) {
    const byte = buf[offset + i]
    if (byte === undefined) return 'short'
    value += (byte & 0x7f) * mul
    if ((byte & 0x80) === 0) return { value, size: i + 1 }
    mul *= 128
  }
  return 'malformed'
}

export interface Frame {
  header: number
  body: Buffer
}

/** A single packet split into its first byte and body (the remaining length is recomputed on join). */
export function split(bytes: Buffer): Frame | undefined {
  const len = readVarint(bytes, 1)
  if (typeof len === 'string' || bytes.length < 1) return undefined
  return { header: bytes[0] as number, body: bytes.subarray(1 + len.size, 1 + len.size + len.value) }
}

export function join(header: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([header]), encodeVarint(body.length), body])
}

export interface FrameWalk {
  /** Every frame is whole: the broker has all it needs to act on each. */
  complete: boolean
  /** When not complete: how many bytes the last frame declares it still needs (Infinity when malformed). */
  missing: number
  /** When not complete: the whole size the last frame declares, header included (what a maximum packet size limits). */
  lastFrame: number
  /** Whole PINGREQ frames (0xC0 0x00) among them: each earns a PINGRESP if the broker keeps going. */
  pings: number
}

/** Walks `bytes` frame by frame as a broker's reader would. */
export function walkFrames(bytes: Buffer): FrameWalk {
  let at = 0
  let pings = 0
  while (at < bytes.length) {
    const len = readVarint(bytes, at + 1)
    if (len === 'malformed')
      return {
        complete: false,
        missing: Number.POSITIVE_INFINITY,
        lastFrame: Number.POSITIVE_INFINITY,
        pings,
      }
    if (len === 'short') return { complete: false, missing: 1, lastFrame: bytes.length - at + 1, pings }
    const end = at + 1 + len.size + len.value
    if (end > bytes.length)
      return { complete: false, missing: end - bytes.length, lastFrame: end - at, pings }
    if (bytes[at] === 0xc0 && len.value === 0) pings++
    at = end
  }
  return { complete: true, missing: 0, lastFrame: 0, pings }
}
