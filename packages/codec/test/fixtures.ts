// Shared fixtures: sample values and the documented JSON mapping, written independently of src/.

export const JSON_TYPE = 'application/json'
export const CBOR = 'application/cbor'
export const MSGPACK = 'application/msgpack'
export const X_MSGPACK = 'application/x-msgpack'
export const TEXT = 'text/plain'
export const BINARY = 'application/octet-stream'

/** Structured formats: every pair of these must round-trip the samples. */
export const STRUCTURED = [JSON_TYPE, CBOR, MSGPACK, X_MSGPACK] as const

export const samples: Record<string, unknown> = {
  'nested object': { a: { b: { c: [1, 2, { d: 'e' }] } }, f: true, g: null, h: -1.5 },
  array: [1, 'two', false, null, [3, [4]], { five: 5 }],
  date: { at: new Date(Date.UTC(2024, 1, 29, 12, 30, 45, 123)) },
  binary: { bytes: new Uint8Array([0, 1, 2, 253, 254, 255]) },
  'bigint within 64 bits': { big: 2n ** 60n + 7n, neg: -(2n ** 62n) },
  'safe bigint': { small: 42n },
  unicode: { text: 'héllo wörld ✓ 日本語 🐶', ключ: 'значение' },
  'empty values': { s: '', a: [], o: {}, n: null, z: 0 },
  'top-level string': 'just a string',
  'top-level number': 3.25,
  'top-level null': null,
  'top-level false': false,
  'empty object': {},
  'empty array': [],
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && [Object.prototype, null].includes(Object.getPrototypeOf(v))

/** What a value looks like after a trip through JSON, per the README's mapping. */
export function jsonModel(value: unknown): unknown {
  if (typeof value === 'bigint') {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : value
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return null
    // JSON.stringify writes integers below 1e21 digit by digit; beyond 2^53-1 those decode as bigint.
    if (Number.isInteger(value) && !Number.isSafeInteger(value) && Math.abs(value) < 1e21)
      return BigInt(String(value))
    return Object.is(value, -0) ? 0 : value
  }
  if (value instanceof Date) return value.toISOString()
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64')
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : jsonModel(v)))
  if (isPlainObject(value)) {
    // fromEntries defines own properties, so a `__proto__` key stays a key
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, jsonModel(v)]),
    )
  }
  return value
}

/** Buffers and Uint8Arrays compare equal by content; everything else unchanged. */
export function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return { bytes: Array.from(value) }
  if (Array.isArray(value)) return value.map(plain)
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]))
  return value
}

export const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')
export const fromHex = (text: string): Uint8Array =>
  new Uint8Array(Buffer.from(text.replace(/\s+/g, ''), 'hex'))
export const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text)
