import { Decoder as CborDecoder, Encoder as CborEncoder, type Options as CborOptions } from 'cbor-x'
import { Packr, Unpackr } from 'msgpackr'

// One encoder per format, created on first use and reused: building them is costly, and both keep
// a growing scratch buffer. The options pin interoperable, standard encodings:
// - no record/structure extensions, maps decode to plain objects (other decoders read everything);
// - binary is a plain byte string (CBOR major type 2 / msgpack bin), decoded as a copy, so a decoded
//   value never aliases the caller's (possibly reused) input buffer;
// - bigint is a 64-bit integer; in CBOR a larger one is a bignum (tags 2/3); any 64-bit-wide integer
//   on the wire decodes as bigint, smaller ones as number;
// - Date is CBOR tag 1 (epoch seconds, ms precision) / msgpack timestamp extension (-1).

let cbor: CborEncoder | undefined
let msgpack: Packr | undefined
let cborMaps: CborDecoder | undefined
let msgpackMaps: Unpackr | undefined

const CBOR_OPTIONS: CborOptions & { useTag259ForMaps: boolean } = {
  useRecords: false,
  mapsAsObjects: true,
  tagUint8Array: false,
  // A Map is written as a plain CBOR map (tag 259 would make other decoders see a tagged value).
  useTag259ForMaps: false,
  // Preferred serialization (RFC 8949 §4.1): the shortest map header.
  variableMapSize: true,
  copyBuffers: true,
}

const MSGPACK_OPTIONS = {
  useRecords: false,
  mapsAsObjects: true,
  moreTypes: false,
  // fixmap/map16 by size (msgpackr writes map16 even for tiny maps otherwise).
  variableMapSize: true,
  // msgpackr's default writes undefined as a private extension other decoders reject.
  encodeUndefinedAsNil: true,
  int64AsType: 'bigint',
  copyBuffers: true,
} as const

export function cborCodec(): CborEncoder {
  cbor ??= new CborEncoder(CBOR_OPTIONS)
  return cbor
}

export function msgpackCodec(): Packr {
  msgpack ??= new Packr(MSGPACK_OPTIONS)
  return msgpack
}

// cbor-x and msgpackr rename a `__proto__` map key to `__proto_` (their guard against prototype
// pollution), which changes the data. Input that may hold that key is decoded into Maps instead and
// turned into objects whose `__proto__` is an ordinary own property, as JSON.parse makes it.
const PROTO_KEY = Buffer.from('__proto__', 'latin1')

function mayHoldProtoKey(bytes: Uint8Array): boolean {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(PROTO_KEY) !== -1
}

export function decodeCbor(bytes: Uint8Array): unknown {
  if (!mayHoldProtoKey(bytes)) return cborCodec().decode(bytes)
  cborMaps ??= new CborDecoder({ ...CBOR_OPTIONS, mapsAsObjects: false })
  return mapsToObjects(cborMaps.decode(bytes))
}

export function decodeMsgpack(bytes: Uint8Array): unknown {
  if (!mayHoldProtoKey(bytes)) return msgpackCodec().unpack(bytes)
  msgpackMaps ??= new Unpackr({ ...MSGPACK_OPTIONS, mapsAsObjects: false })
  return mapsToObjects(msgpackMaps.unpack(bytes))
}

/** Maps (from a map-mode decode) as plain objects with own properties only; keys as the object decoders make them. */
function mapsToObjects(value: unknown): unknown {
  if (value instanceof Map) {
    const out: Record<string, unknown> = {}
    for (const [key, item] of value) {
      if (key !== null && typeof key === 'object') throw new TypeError('a map key must be a string or number')
      Object.defineProperty(out, String(key), {
        value: mapsToObjects(item),
        writable: true,
        enumerable: true,
        configurable: true,
      })
    }
    return out
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = mapsToObjects(value[i])
    return value
  }
  return value
}
