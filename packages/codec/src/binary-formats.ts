import { Encoder as CborEncoder, type Options as CborOptions } from 'cbor-x'
import { Packr } from 'msgpackr'

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

export function cborCodec(): CborEncoder {
  const options: CborOptions & { useTag259ForMaps: boolean } = {
    useRecords: false,
    mapsAsObjects: true,
    tagUint8Array: false,
    // A Map is written as a plain CBOR map (tag 259 would make other decoders see a tagged value).
    useTag259ForMaps: false,
    // Preferred serialization (RFC 8949 §4.1): the shortest map header.
    variableMapSize: true,
    copyBuffers: true,
  }
  cbor ??= new CborEncoder(options)
  return cbor
}

export function msgpackCodec(): Packr {
  msgpack ??= new Packr({
    useRecords: false,
    mapsAsObjects: true,
    moreTypes: false,
    // fixmap/map16 by size (msgpackr writes map16 even for tiny maps otherwise).
    variableMapSize: true,
    // msgpackr's default writes undefined as a private extension other decoders reject.
    encodeUndefinedAsNil: true,
    int64AsType: 'bigint',
    copyBuffers: true,
  })
  return msgpack
}
