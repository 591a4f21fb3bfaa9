// What the hand-written parsers' tests compare against: mqtt-packet's reading of the same frame.
import mqttPacket from 'mqtt-packet'

/** mqtt-packet's reading of one whole frame: the packet, or the error it gives. */
export function theirs(
  frame: Buffer,
  protocolVersion: number,
): { packet?: mqttPacket.Packet; error?: Error } {
  const parser = mqttPacket.parser({ protocolVersion })
  const out: { packet?: mqttPacket.Packet; error?: Error } = {}
  parser.on('packet', (p) => {
    out.packet ??= p
  })
  parser.on('error', (e) => {
    out.error ??= e
  })
  try {
    parser.parse(frame)
  } catch (e) {
    out.error = e as Error
  }
  return out
}

/** The frame as a view into a larger chunk, as the frame reader hands it on. */
export function inChunk(frame: Buffer): Buffer {
  const chunk = Buffer.alloc(frame.length + 16, 0xaa)
  frame.copy(chunk, 8)
  return chunk.subarray(8, 8 + frame.length)
}

/** Seeded random numbers (mulberry32): generated packets repeat from run to run. */
export function seeded(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
