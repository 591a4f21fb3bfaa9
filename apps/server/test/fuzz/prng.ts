/**
 * A small seeded PRNG (sfc32, seeded through splitmix32) so that every fuzz input is a pure function of
 * (seed, index): a failure is replayed from those two numbers alone, whatever ran before it.
 */

function splitmix32(state: number): () => number {
  let s = state >>> 0
  return () => {
    s = (s + 0x9e3779b9) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return (z ^ (z >>> 16)) >>> 0
  }
}

export interface Rng {
  /** A uniform 32-bit unsigned integer. */
  u32(): number
  /** An integer in [min, max] (inclusive). */
  int(min: number, max: number): number
  /** True with probability `p`. */
  chance(p: number): boolean
  pick<T>(items: readonly T[]): T
  bytes(length: number): Buffer
}

/** The generator for input `index` of the run seeded with `seed`. */
export function inputRng(seed: number, index: number): Rng {
  const mix = splitmix32((seed ^ Math.imul(index + 1, 0x27d4eb2d)) >>> 0)
  let a = mix()
  let b = mix()
  let c = mix()
  let d = mix() | 1
  const u32 = (): number => {
    // sfc32
    const t = (((a + b) >>> 0) + d) >>> 0
    d = (d + 1) >>> 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) >>> 0
    c = ((c << 21) | (c >>> 11)) >>> 0
    c = (c + t) >>> 0
    return t
  }
  for (let i = 0; i < 12; i++) u32()
  const int = (min: number, max: number): number => min + Math.floor((u32() / 2 ** 32) * (max - min + 1))
  return {
    u32,
    int,
    chance: (p) => u32() / 2 ** 32 < p,
    pick: <T>(items: readonly T[]): T => items[int(0, items.length - 1)] as T,
    bytes(length) {
      const out = Buffer.allocUnsafe(length)
      for (let i = 0; i < length; i += 4) {
        const r = u32()
        out[i] = r & 0xff
        if (i + 1 < length) out[i + 1] = (r >>> 8) & 0xff
        if (i + 2 < length) out[i + 2] = (r >>> 16) & 0xff
        if (i + 3 < length) out[i + 3] = r >>> 24
      }
      return out
    },
  }
}
