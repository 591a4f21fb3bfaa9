import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net'
import { createServer as createTlsServer, connect as tlsConnect } from 'node:tls'
import { tempDir } from '@proj/test-utils'
import { afterEach, describe, expect, it } from 'vitest'
import { ConnectionAdmission, type Refusal } from '../src/admission.js'
import { specFor } from '../src/config-schema.js'
import { coerceValue } from '../src/config-values.js'
import { createTestCertificates, hasOpenssl } from './helpers/certs.js'

const cleanup: (() => void)[] = []
afterEach(() => {
  for (const f of cleanup.splice(0)) f()
})

function admission(options: Partial<ConstructorParameters<typeof ConnectionAdmission>[0]> = {}) {
  let clock = 0
  const refused: Refusal[] = []
  const a = new ConnectionAdmission({
    maxPerAddress: 0,
    ratePerAddress: 0,
    exempt: [],
    onRefused: (r) => refused.push(r),
    now: () => clock,
    ...options,
  })
  cleanup.push(() => a.close())
  return {
    a,
    refused,
    advance(ms: number) {
      clock += ms
    },
  }
}

/**
 * Listens on 127.0.0.1; `seen` holds every socket the server's own listeners got. A plain TCP server greets
 * each with a byte, so a client knows it was admitted without waiting for anything.
 */
async function listen(server: Server, greet = true): Promise<{ port: number; seen: Socket[] }> {
  const seen: Socket[] = []
  server.on('connection', (s: Socket) => {
    seen.push(s)
    s.on('error', () => {})
    if (greet) {
      s.resume()
      s.write('k')
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  cleanup.push(() => {
    for (const s of seen) s.destroy()
    server.close()
  })
  return { port: (server.address() as AddressInfo).port, seen }
}

/** Connects; 'open' when the server's listeners greet it, 'reset' when it is reset at accept. */
function attempt(port: number): Promise<{ outcome: 'open' | 'reset'; socket: Socket }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    cleanup.push(() => socket.destroy())
    socket.on('error', () => resolve({ outcome: 'reset', socket }))
    socket.on('close', () => resolve({ outcome: 'reset', socket }))
    // the greeting comes only from the server's listeners, which a refused socket never reaches
    socket.once('data', () => resolve({ outcome: 'open', socket }))
  })
}

describe('ConnectionAdmission', () => {
  it('resets connections past the rate per address and lets them in again as the bucket refills', async () => {
    const { a, refused, advance } = admission({ ratePerAddress: 3 })
    const server = createServer()
    a.guard(server, 'mqtt')
    const { port, seen } = await listen(server)
    const outcomes = []
    for (let i = 0; i < 5; i++) outcomes.push((await attempt(port)).outcome)
    expect(outcomes).toEqual(['open', 'open', 'open', 'reset', 'reset'])
    // refused sockets never reached the server's own connection listeners
    expect(seen).toHaveLength(3)
    expect(refused).toEqual([
      { listener: 'mqtt', address: '127.0.0.1', reason: 'rate' },
      { listener: 'mqtt', address: '127.0.0.1', reason: 'rate' },
    ])
    advance(340) // one token at 3 per second
    expect((await attempt(port)).outcome).toBe('open')
    expect((await attempt(port)).outcome).toBe('reset')
  })

  it('resets connections past the open limit per address; a closed one frees its place', async () => {
    const { a, refused } = admission({ maxPerAddress: 2 })
    const server = createServer()
    a.guard(server, 'http')
    const { port, seen } = await listen(server)
    const first = await attempt(port)
    expect(first.outcome).toBe('open')
    expect((await attempt(port)).outcome).toBe('open')
    expect((await attempt(port)).outcome).toBe('reset')
    expect(refused.map((r) => r.reason)).toEqual(['concurrent'])
    const closed = once(seen[0]!, 'close')
    first.socket.destroy()
    await closed
    expect((await attempt(port)).outcome).toBe('open')
  })

  it.skipIf(!hasOpenssl())(
    'refuses before the TLS handshake: the TLS server never sees the socket',
    async () => {
      const { a } = admission({ maxPerAddress: 1 })
      const dir = await tempDir('proj-admission-')
      cleanup.push(() => void dir.remove())
      const certs = createTestCertificates(dir.path)
      const tls = createTlsServer({
        key: readFileSync(certs.serverKeyPath),
        cert: readFileSync(certs.serverCertPath),
      })
      const handshakes: string[] = []
      tls.on('secureConnection', () => handshakes.push('secure'))
      tls.on('tlsClientError', () => handshakes.push('error'))
      a.guard(tls, 'mqtts')
      const { port } = await listen(tls, false)
      const ok = tlsConnect({ port, host: '127.0.0.1', ca: certs.ca, servername: 'localhost' })
      cleanup.push(() => ok.destroy())
      await once(ok, 'secureConnect')
      const refused = tlsConnect({ port, host: '127.0.0.1', ca: certs.ca, servername: 'localhost' })
      const error = await once(refused, 'error').then(([e]) => e as NodeJS.ErrnoException)
      expect(error.code).toBe('ECONNRESET')
      expect(handshakes).toEqual(['secure'])
    },
  )

  it('exempts listed addresses and subnets, IPv4-mapped IPv6 too, and keys IPv6 by /64', () => {
    const { a } = admission({ maxPerAddress: 1, exempt: ['127.0.0.0/8', '::1', '10.1.0.0/16'] })
    const fake = (remoteAddress: string) => {
      const socket = { remoteAddress, on() {}, once() {}, resetAndDestroy() {} }
      return socket as unknown as Socket
    }
    for (const address of ['127.0.0.1', '127.9.9.9', '::ffff:127.0.0.1', '::1', '10.1.2.3']) {
      expect(a.admit(fake(address), 'mqtt'), address).toBe(true)
      expect(a.admit(fake(address), 'mqtt'), address).toBe(true)
    }
    expect(a.admit(fake('10.2.0.1'), 'mqtt')).toBe(true)
    expect(a.admit(fake('::ffff:10.2.0.1'), 'mqtt')).toBe(false)
    expect(a.admit(fake('2001:db8:1:2::5'), 'mqtt')).toBe(true)
    expect(a.admit(fake('2001:db8:1:2:ffff::9'), 'mqtt')).toBe(false) // same /64
    expect(a.admit(fake('2001:db8:1:3::5'), 'mqtt')).toBe(true)
  })

  it('forgets addresses once nothing is open and their bucket is full again', () => {
    const { a, advance } = admission({ maxPerAddress: 5, ratePerAddress: 2 })
    expect(a.take('192.0.2.1')).toBeUndefined()
    expect(a.take('192.0.2.2')).toBeUndefined()
    a.release('192.0.2.1')
    a.sweep()
    expect(a.tracked).toBe(2) // the bucket still refills
    advance(1000)
    a.sweep()
    expect(a.tracked).toBe(1) // 192.0.2.2 still has a connection open
  })

  it('installs nothing when both limits are 0', async () => {
    const { a } = admission()
    const server = createServer()
    const emit = server.emit
    a.guard(server, 'mqtt')
    expect(server.emit).toBe(emit)
  })

  it('validates connections.exempt in the config', () => {
    const spec = specFor('connections.exempt')!
    expect(coerceValue(spec, '127.0.0.0/8, ::1', true)).toEqual({ ok: true, value: ['127.0.0.0/8', '::1'] })
    expect(coerceValue(spec, '', true)).toEqual({ ok: true, value: [] })
    expect(coerceValue(spec, [], false)).toEqual({ ok: true, value: [] })
    expect(coerceValue(spec, ['localhost'], false)).toMatchObject({ ok: false })
    expect(coerceValue(spec, '10.0.0.0/33', true)).toMatchObject({ ok: false })
  })
})
