import mqttPacket from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import { MAX_PACKET_SIZE } from './fuzz-server.js'
import { generatePacket, PACKET_TYPES } from './generate.js'
import { makeInput } from './input.js'
import { MUTATIONS } from './mutate.js'
import { inputRng } from './prng.js'
import { walkFrames } from './wire.js'

describe('fuzz generator', () => {
  it('makes valid packets of every type for MQTT 3.1.1 and 5 (mqtt-packet parses each back)', () => {
    const seen = new Set<string>()
    for (let i = 0; i < 1500; i++) {
      const version = i % 2 === 0 ? 4 : 5
      const cmd = PACKET_TYPES[(i >> 1) % PACKET_TYPES.length]!
      const g = generatePacket(inputRng(1, i), version, cmd)
      const parser = mqttPacket.parser({ protocolVersion: version })
      const parsed: string[] = []
      const errors: string[] = []
      parser.on('packet', (p) => parsed.push(p.cmd))
      parser.on('error', (e) => errors.push(`${version} ${g.cmd} ${e.message}: ${g.bytes.toString('hex')}`))
      parser.parse(g.bytes)
      expect(errors).toEqual([])
      expect(parsed, `${version} ${g.bytes.toString('hex')}`).toEqual([g.cmd])
      seen.add(`${version} ${g.cmd}`)
    }
    // every type in both versions, except AUTH, which 3.1.1 does not have
    expect(seen.size).toBe(PACKET_TYPES.length * 2 - 1)
  })

  it('makes each input from (seed, index) alone: replaying one gives the same bytes', () => {
    for (const index of [0, 1, 77, 123_456, 999_999]) {
      const a = makeInput(42, index)
      const b = makeInput(42, index)
      expect(b.bytes.equals(a.bytes)).toBe(true)
      expect(b.mutation).toBe(a.mutation)
      expect(makeInput(43, index).bytes.equals(a.bytes) && makeInput(43, index).mutation === a.mutation).toBe(
        false,
      )
    }
  })

  it('uses every named mutation, and some leave a partial packet or a malformed length', () => {
    const used = new Set<string>()
    let partial = 0
    for (let i = 0; i < 1500; i++) {
      const input = makeInput(7, i)
      used.add(input.mutation)
      if (!walkFrames(input.bytes).complete) partial++
    }
    expect([...used].sort()).toEqual(Object.keys(MUTATIONS).sort())
    expect(partial).toBeGreaterThan(50)
  })
})

describe('fuzz judgement of partial inputs', () => {
  it('judges a partial packet by its own declared size, not with the whole packets before it in the input', () => {
    // seed 20261203 input 320648: a whole 53 kB PUBLISH, then garbage declaring a packet under the
    // maximum size; the broker rightly waits for the rest (the long run once counted it as unanswered).
    const input = makeInput(20261203, 320648)
    const walk = walkFrames(input.bytes)
    expect(walk.complete).toBe(false)
    expect(walk.lastFrame).toBeLessThanOrEqual(MAX_PACKET_SIZE)
    expect(walk.missing + input.bytes.length).toBeGreaterThan(MAX_PACKET_SIZE + 16)
    const whole = Buffer.concat([
      Buffer.from([0x30, 0x02, 0x00, 0x00]),
      Buffer.from([0x30, 0xff, 0xff, 0x7f]),
    ])
    expect(walkFrames(whole)).toMatchObject({ complete: false, lastFrame: 4 + 0x1fffff, missing: 0x1fffff })
  })
})
