/**
 * Named mutations of a valid packet: a failure says which one made the input. Each takes the
 * generated packet and the input's generator and returns new bytes (it may return the same bytes).
 */
import type { Generated } from './generate.js'
import type { Rng } from './prng.js'
import { encodeVarint, join, readVarint, split } from './wire.js'

type Mutation = (g: Generated, rng: Rng) => Buffer

const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0x3f, 0x40]
/** Sequences that are not UTF-8, or are UTF-8 MQTT forbids (U+0000, surrogates, overlong forms). */
const BAD_UTF8 = [
  [0xc3, 0x28],
  [0xed, 0xa0, 0x80],
  [0xff],
  [0x00],
  [0xc0, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0xe2, 0x82],
  [0xef, 0xbf, 0xbf],
]

/** Runs of printable ASCII (where the generator's strings sit): [start, end) pairs of at least `min` bytes. */
function asciiRuns(buf: Buffer, min: number): Array<[number, number]> {
  const runs: Array<[number, number]> = []
  let start = -1
  for (let i = 0; i <= buf.length; i++) {
    const b = buf[i]
    const printable = b !== undefined && b >= 0x20 && b < 0x7f
    if (printable && start < 0) start = i
    if (!printable && start >= 0) {
      if (i - start >= min) runs.push([start, i])
      start = -1
    }
  }
  return runs
}

/** Rebuilds the packet with its body changed by `edit` and the remaining length recomputed. */
function editBody(g: Generated, edit: (body: Buffer) => Buffer): Buffer {
  const f = split(g.bytes)
  if (f === undefined) return g.bytes
  return join(f.header, edit(Buffer.from(f.body)))
}

/** The v5 properties of the body: where their length sits and where they end. */
function propertiesSpan(g: Generated, body: Buffer): { at: number; end: number } | undefined {
  if (g.propertiesAt === undefined) return undefined
  const len = readVarint(body, g.propertiesAt)
  if (typeof len === 'string') return undefined
  return { at: g.propertiesAt, end: g.propertiesAt + len.size + len.value }
}

/** One random property: any identifier byte (known ones more often), followed by a value of a random shape. */
function randomProperty(rng: Rng): Buffer {
  const KNOWN = [
    1, 2, 3, 8, 9, 11, 17, 18, 19, 21, 22, 23, 24, 25, 26, 28, 31, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42,
  ]
  const id = rng.chance(0.6) ? rng.pick(KNOWN) : rng.int(0, 255)
  const shape = rng.int(0, 5)
  const value =
    shape === 0
      ? Buffer.from([rng.int(0, 255)])
      : shape === 1
        ? rng.bytes(2)
        : shape === 2
          ? rng.bytes(4)
          : shape === 3
            ? encodeVarint(rng.pick([0, 1, 127, 128, 268_435_455]))
            : shape === 4
              ? (() => {
                  const s = rng.bytes(rng.int(0, 8))
                  return Buffer.concat([Buffer.from([0, s.length]), s])
                })()
              : rng.bytes(rng.int(0, 6))
  return Buffer.concat([Buffer.from([id]), value])
}

export const MUTATIONS: Record<string, Mutation> = {
  none: (g) => g.bytes,
  'bit-flip': (g, rng) => {
    const out = Buffer.from(g.bytes)
    const n = rng.int(1, 8)
    for (let i = 0; i < n; i++) {
      const at = rng.int(0, out.length - 1)
      out[at] = (out[at] as number) ^ (1 << rng.int(0, 7))
    }
    return out
  },
  'byte-set': (g, rng) => {
    const out = Buffer.from(g.bytes)
    const n = rng.int(1, 4)
    for (let i = 0; i < n; i++) out[rng.int(0, out.length - 1)] = rng.pick(INTERESTING)
    return out
  },
  // the declared remaining length stays: the broker holds a partial packet
  truncate: (g, rng) => g.bytes.subarray(0, rng.int(1, Math.max(1, g.bytes.length - 1))),
  // the remaining length matches the shorter body: fields end early
  'truncate-body': (g, rng) =>
    editBody(g, (body) => body.subarray(0, rng.int(0, Math.max(0, body.length - 1)))),
  'length-overstated': (g, rng) => {
    const f = split(g.bytes)
    if (f === undefined) return g.bytes
    const extra = rng.pick([1, 2, rng.int(1, 100), rng.int(100, 100_000)])
    return Buffer.concat([Buffer.from([f.header]), encodeVarint(f.body.length + extra), f.body])
  },
  'length-understated': (g, rng) => {
    const f = split(g.bytes)
    if (f === undefined || f.body.length === 0) return g.bytes
    const len = rng.int(0, f.body.length - 1)
    return Buffer.concat([Buffer.from([f.header]), encodeVarint(len), f.body])
  },
  'huge-remaining-length': (g, rng) => {
    const f = split(g.bytes)
    if (f === undefined) return g.bytes
    const len = rng.pick([
      encodeVarint(268_435_455),
      encodeVarint(rng.int(1_000_000, 268_435_455)),
      Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7f]), // five bytes: malformed
      Buffer.from([0x80, 0x80, 0x80, 0x80]), // never ends
      Buffer.from([0x80, 0x00]), // non-minimal zero
    ])
    return Buffer.concat([Buffer.from([f.header]), len, f.body.subarray(0, rng.int(0, f.body.length))])
  },
  'string-length-overstated': (g, rng) => {
    const out = Buffer.from(g.bytes)
    // a two-byte big-endian prefix equal to the length of the printable run after it is a string's length
    const prefixed = asciiRuns(out, 1).filter(([s, e]) => s >= 2 && out.readUInt16BE(s - 2) === e - s)
    const zero = [...out.keys()].filter((i) => i + 1 < out.length && out[i] === 0 && out[i + 1] === 0)
    if (prefixed.length > 0) {
      const [s, e] = rng.pick(prefixed)
      out.writeUInt16BE(Math.min(0xffff, e - s + rng.pick([1, 2, 50, 0xffff])), s - 2)
    } else if (zero.length > 0) {
      out.writeUInt16BE(rng.int(1, 0xffff), rng.pick(zero))
    }
    return out
  },
  'random-property': (g, rng) =>
    editBody(g, (body) => {
      const span = propertiesSpan(g, body)
      if (span === undefined) return Buffer.concat([body, randomProperty(rng)])
      const props = Buffer.concat(Array.from({ length: rng.int(1, 3) }, () => randomProperty(rng)))
      // the new properties replace the old ones or follow them (duplicates of a known id included)
      const inner = rng.chance(0.5) ? Buffer.concat([propertiesBody(body, span), props]) : props
      return Buffer.concat([
        body.subarray(0, span.at),
        encodeVarint(inner.length),
        inner,
        body.subarray(span.end),
      ])
    }),
  'properties-length-wrong': (g, rng) =>
    editBody(g, (body) => {
      const span = propertiesSpan(g, body)
      if (span === undefined) return body
      const contents = propertiesBody(body, span)
      const len = rng.pick([
        contents.length + rng.int(1, 300),
        268_435_455,
        0,
        Math.max(0, contents.length - 1),
      ])
      return Buffer.concat([body.subarray(0, span.at), encodeVarint(len), contents, body.subarray(span.end)])
    }),
  'invalid-utf8': (g, rng) => {
    const out = Buffer.from(g.bytes)
    const runs = asciiRuns(out, 1)
    if (runs.length === 0) return out
    const [s, e] = rng.pick(runs)
    const bad = rng.pick(BAD_UTF8).slice(0, e - s)
    const at = rng.int(s, e - bad.length)
    for (let i = 0; i < bad.length; i++) out[at + i] = bad[i] as number
    return out
  },
  'empty-list': (g) =>
    editBody(g, (body) => {
      if (!['subscribe', 'unsubscribe', 'suback', 'unsuback'].includes(g.cmd)) return body.subarray(0, 0)
      const span = propertiesSpan(g, body)
      return body.subarray(0, span?.end ?? 2)
    }),
  'header-flags': (g, rng) => {
    const out = Buffer.from(g.bytes)
    out[0] = ((out[0] as number) & 0xf0) | rng.int(0, 15)
    return out
  },
  'type-swap': (g, rng) => {
    const out = Buffer.from(g.bytes)
    out[0] = (rng.int(0, 15) << 4) | ((out[0] as number) & 0x0f)
    return out
  },
  'insert-bytes': (g, rng) =>
    editBody(g, (body) => {
      const at = rng.int(0, body.length)
      return Buffer.concat([body.subarray(0, at), rng.bytes(rng.int(1, 16)), body.subarray(at)])
    }),
  'append-garbage': (g, rng) => Buffer.concat([g.bytes, rng.bytes(rng.int(1, 64))]),
  twice: (g) => Buffer.concat([g.bytes, g.bytes]),
  'random-bytes': (_g, rng) => {
    const out = rng.bytes(rng.int(1, 256))
    if (rng.chance(0.8)) out[0] = rng.int(1, 15) << 4
    return out
  },
}

/** The existing properties' contents, without their length. */
function propertiesBody(body: Buffer, span: { at: number; end: number }): Buffer {
  const len = readVarint(body, span.at)
  return typeof len === 'string' ? Buffer.alloc(0) : body.subarray(span.at + len.size, span.end)
}

export type MutationName = keyof typeof MUTATIONS

/** A mutation by weight: a fifth of the inputs stay valid so that the broker also gets far into its state. */
export function pickMutation(rng: Rng): string {
  if (rng.chance(0.2)) return 'none'
  const names = Object.keys(MUTATIONS).filter((n) => n !== 'none')
  return rng.pick(names)
}
