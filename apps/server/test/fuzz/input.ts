/** One fuzz input: a pure function of (seed, index), so any of them can be replayed alone. */
import { generatePacket, type PacketType, type Version } from './generate.js'
import { MUTATIONS, pickMutation } from './mutate.js'
import { inputRng } from './prng.js'

export interface FuzzInput {
  seed: number
  index: number
  version: Version
  cmd: PacketType
  mutation: string
  bytes: Buffer
  /** Sent a byte at a time (in small chunks when long). */
  drip: boolean
  /** Sent as the first packet of a new connection instead of on the lane's connected one. */
  fresh: boolean
}

/** Even inputs speak MQTT 3.1.1, odd ones MQTT 5 (with an even number of lanes, each lane keeps one version). */
export const versionOf = (index: number): Version => (index % 2 === 0 ? 4 : 5)

export function makeInput(seed: number, index: number): FuzzInput {
  const version = versionOf(index)
  const rng = inputRng(seed, index)
  const g = generatePacket(rng, version)
  const mutation = pickMutation(rng)
  const mutate = MUTATIONS[mutation]!
  let bytes = mutate(g, rng)
  if (bytes.length === 0) bytes = g.bytes
  // a CONNECT is mostly the first packet of a connection; a second CONNECT is a protocol error worth sending too
  const fresh = g.cmd === 'connect' ? rng.chance(0.8) : rng.chance(0.02)
  return { seed, index, version, cmd: g.cmd, mutation, bytes, drip: rng.chance(0.08), fresh }
}

/** How an input is named in a failure: enough to replay it and to read it. */
export function describeInput(input: FuzzInput, maxBytes = 512): string {
  const hex = input.bytes.subarray(0, maxBytes).toString('hex')
  const more = input.bytes.length > maxBytes ? `… (${input.bytes.length} bytes)` : ''
  return (
    `input ${input.index} (MQTT ${input.version === 5 ? '5' : '3.1.1'} ${input.cmd}, mutation ${input.mutation}` +
    `${input.drip ? ', dripped' : ''}${input.fresh ? ', first packet of a new connection' : ''}): ${hex}${more}\n` +
    `  replay: pnpm fuzz --seed ${input.seed} --replay ${input.index}`
  )
}
