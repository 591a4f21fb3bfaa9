import { describe, expect, it } from 'vitest'
import { pairClient, useBrokerFixture } from './helpers.js'

const fx = useBrokerFixture()

/**
 * Inputs the fuzzer (`pnpm fuzz`, apps/server/test/fuzz) found, replayed as it sent them: after a
 * CONNECT without keep-alive, each must close the connection by itself, without more bytes from the
 * client, while other clients keep working.
 */
describe('inputs found by the fuzzer', () => {
  it.each([
    // seed 20261202, inputs 906 and 918 (3.1.1 DISCONNECT, mutation huge-remaining-length), 1775 (5 PINGRESP)
    ['3.1.1: four remaining-length bytes that all say "more follows"', 4, 'e080808080'],
    ['5: four remaining-length bytes that all say "more follows"', 5, 'd080808080'],
  ] as const)('%s: the broker closes at once', async (_name, version, hex) => {
    fx.make()
    const bad = pairClient(fx.broker, version)
    await bad.connect({ keepalive: 0 })
    bad.send(Buffer.from(hex, 'hex'))
    await bad.waitClosed()
    if (version === 5) expect(bad.packets.find((p) => p.cmd === 'disconnect')?.reasonCode).toBe(0x81)
    const good = pairClient(fx.broker, version)
    await good.connect()
    good.send({ cmd: 'pingreq' })
    await good.next('pingresp')
  })
})
