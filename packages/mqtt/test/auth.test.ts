import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto'
import mqtt, { type MqttClient } from 'mqtt'
import { beforeAll, describe, expect, it, vi } from 'vitest'
import { type AuthMethodFactory, createBroker } from '../src/index.js'
import { openTestRuntime, pairClient, type RawClient, startBroker, useBrokerFixture } from './helpers.js'

const METHOD = 'SCRAM-SHA-256'
const hmac = (key: Buffer, s: string) => createHmac('sha256', key).update(s).digest()

/** The client side of SCRAM-SHA-256 (RFC 5802 section 3), as a test would write it from the RFC. */
function scramClient(username: string, password: string) {
  const gs2 = 'n,,'
  const bare = `n=${username.replace(/=/g, '=3D').replace(/,/g, '=2C')},r=${randomBytes(18).toString('base64')}`
  let expected = ''
  return {
    first: Buffer.from(gs2 + bare),
    final(serverFirst: string, proofPassword = password): Buffer {
      const attrs = new Map(serverFirst.split(',').map((p) => [p[0]!, p.slice(2)] as const))
      const salted = pbkdf2Sync(
        proofPassword,
        Buffer.from(attrs.get('s')!, 'base64'),
        Number(attrs.get('i')),
        32,
        'sha256',
      )
      const clientKey = hmac(salted, 'Client Key')
      const storedKey = createHash('sha256').update(clientKey).digest()
      const withoutProof = `c=${Buffer.from(gs2).toString('base64')},r=${attrs.get('r')}`
      const authMessage = `${bare},${serverFirst},${withoutProof}`
      const signature = hmac(storedKey, authMessage)
      const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]!))
      expected = `v=${hmac(hmac(salted, 'Server Key'), authMessage).toString('base64')}`
      return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`)
    },
    /** The server-final message proves the server holds the ServerKey. */
    verify(serverFinal: Buffer | undefined): boolean {
      return serverFinal?.toString() === expected
    },
  }
}

const fx = useBrokerFixture()
beforeAll(async () => {
  const rt = fx.rt
  await rt.runtime.users.add('alice', 'wonder land')
  await rt.runtime.users.add('legacy', 'old-pass')
  // A user whose password was set before SCRAM credentials existed.
  const store = rt.runtime.state<Record<string, unknown>>('__users')
  const { scram: _scram, ...legacy } = store.get('legacy')!
  await store.put('legacy', legacy)
})

function make(options: Record<string, unknown> = {}) {
  return fx.make({ requireAuthentication: true, ...options })
}

/** CONNECT with SCRAM, answer the server-first; resolves with the CONNACK. */
async function scramConnect(c: RawClient, username: string, password: string, proofPassword = password) {
  const scram = scramClient(username, password)
  c.send({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 5,
    clean: true,
    clientId: `scram-${username}`,
    keepalive: 0,
    properties: { authenticationMethod: METHOD, authenticationData: scram.first },
  })
  const challenge = await c.next('auth')
  expect(challenge.reasonCode).toBe(0x18)
  expect(challenge.properties?.authenticationMethod).toBe(METHOD)
  const serverFirst = challenge.properties!.authenticationData!.toString()
  expect(serverFirst).toMatch(/^r=.+,s=.+,i=\d+$/)
  c.send({
    cmd: 'auth',
    reasonCode: 0x18,
    properties: { authenticationMethod: METHOD, authenticationData: scram.final(serverFirst, proofPassword) },
  })
  return { connack: await c.next('connack'), scram }
}

describe('enhanced authentication (AUTH, SCRAM-SHA-256)', () => {
  it('authenticates with SCRAM-SHA-256 over AUTH packets and proves the server in CONNACK', async () => {
    make()
    const connected: string[] = []
    fx.broker.events.on('connected', ({ user }) => connected.push(user!.username))
    const c = pairClient(fx.broker, 5)
    const { connack, scram } = await scramConnect(c, 'alice', 'wonder land')
    expect(connack.reasonCode).toBe(0)
    expect(connack.properties?.authenticationMethod).toBe(METHOD)
    expect(scram.verify(connack.properties?.authenticationData)).toBe(true)
    expect(connected).toEqual(['alice'])
    c.send({ cmd: 'pingreq' })
    await c.next('pingresp')
  })

  it('refuses a wrong password with CONNACK 0x86 and a reason string', async () => {
    make()
    const failed: string[] = []
    fx.broker.events.on('auth-failed', ({ reason }) => failed.push(reason))
    const c = pairClient(fx.broker, 5)
    const { connack } = await scramConnect(c, 'alice', 'wonder land', 'wrong')
    expect(connack.reasonCode).toBe(0x86)
    expect(connack.properties?.reasonString).toBe('bad user name or password')
    expect(connack.properties?.authenticationData).toBeUndefined()
    expect(failed).toEqual(['bad user name or password'])
    await c.waitClosed()
  })

  it('answers an unknown user like a known one (fake salt) and refuses at the proof', async () => {
    make()
    const c = pairClient(fx.broker, 5)
    const { connack } = await scramConnect(c, 'nobody', 'x')
    expect(connack.reasonCode).toBe(0x86)
    await c.waitClosed()
  })

  it('refuses a user without a SCRAM credential cleanly; that user still logs in with a password', async () => {
    make()
    const c = pairClient(fx.broker, 5)
    const { connack } = await scramConnect(c, 'legacy', 'old-pass')
    expect(connack.reasonCode).toBe(0x86)
    await c.waitClosed()
    const p = pairClient(fx.broker, 5)
    expect((await p.connect({ username: 'legacy', password: Buffer.from('old-pass') })).reasonCode).toBe(0)
  })

  it('refuses an unknown authentication method with CONNACK 0x8C', async () => {
    make()
    const c = pairClient(fx.broker, 5)
    const ack = await c.connect({ properties: { authenticationMethod: 'KERBEROS' } })
    expect(ack.reasonCode).toBe(0x8c)
    expect(ack.properties?.reasonString).toMatch(/KERBEROS/)
    await c.waitClosed()
    // v3.1.1 has no enhanced authentication: the same client over 3.1.1 gets "not authorized" (5) without a user.
    const v3 = pairClient(fx.broker, 4)
    expect((await v3.connect()).returnCode).toBe(5)
  })

  it('re-authenticates with AUTH 0x19 and keeps the connection; a failed re-authentication ends it (0x87)', async () => {
    make()
    const c = pairClient(fx.broker, 5)
    expect((await scramConnect(c, 'alice', 'wonder land')).connack.reasonCode).toBe(0)
    const again = scramClient('alice', 'wonder land')
    c.send({
      cmd: 'auth',
      reasonCode: 0x19,
      properties: { authenticationMethod: METHOD, authenticationData: again.first },
    })
    const challenge = await c.next('auth')
    expect(challenge.reasonCode).toBe(0x18)
    c.send({
      cmd: 'auth',
      reasonCode: 0x18,
      properties: {
        authenticationMethod: METHOD,
        authenticationData: again.final(challenge.properties!.authenticationData!.toString()),
      },
    })
    const done = await c.next('auth')
    expect(done.reasonCode).toBe(0)
    expect(again.verify(done.properties?.authenticationData)).toBe(true)
    c.send({ cmd: 'pingreq' })
    await c.next('pingresp')

    const bad = scramClient('alice', 'wonder land')
    c.send({
      cmd: 'auth',
      reasonCode: 0x19,
      properties: { authenticationMethod: METHOD, authenticationData: bad.first },
    })
    const ch2 = await c.next('auth')
    c.send({
      cmd: 'auth',
      reasonCode: 0x18,
      properties: {
        authenticationMethod: METHOD,
        authenticationData: bad.final(ch2.properties!.authenticationData!.toString(), 'guess'),
      },
    })
    const d = await c.next('disconnect')
    expect(d.reasonCode).toBe(0x87)
    expect(d.properties?.reasonString).toMatch(/re-authentication failed/)
    await c.waitClosed()
  })

  it('refuses re-authentication as another user', async () => {
    make()
    await fx.rt.runtime.users.add('mallory', 'pw-m').catch(() => {})
    const c = pairClient(fx.broker, 5)
    expect((await scramConnect(c, 'alice', 'wonder land')).connack.reasonCode).toBe(0)
    const other = scramClient('mallory', 'pw-m')
    c.send({
      cmd: 'auth',
      reasonCode: 0x19,
      properties: { authenticationMethod: METHOD, authenticationData: other.first },
    })
    expect((await c.next('disconnect')).reasonCode).toBe(0x87)
    await c.waitClosed()
  })

  it('treats AUTH without enhanced authentication at CONNECT, or with another method, as a protocol error', async () => {
    make({ requireAuthentication: false })
    const c = pairClient(fx.broker, 5)
    await c.connect()
    c.send({ cmd: 'auth', reasonCode: 0x19, properties: { authenticationMethod: METHOD } })
    expect((await c.next('disconnect')).reasonCode).toBe(0x82)
    await c.waitClosed()
    const s = pairClient(fx.broker, 5)
    expect((await scramConnect(s, 'alice', 'wonder land')).connack.reasonCode).toBe(0)
    s.send({ cmd: 'auth', reasonCode: 0x19, properties: { authenticationMethod: 'OTHER' } })
    expect((await s.next('disconnect')).reasonCode).toBe(0x82)
  })

  it('answers a protocol error in the middle of the exchange with a CONNACK (0x82), not DISCONNECT', async () => {
    make()
    const c = pairClient(fx.broker, 5)
    const scram = scramClient('alice', 'wonder land')
    c.send({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 5,
      clean: true,
      clientId: 'mid',
      keepalive: 0,
      properties: { authenticationMethod: METHOD, authenticationData: scram.first },
    })
    await c.next('auth')
    c.send({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'OTHER' } })
    const ack = await c.next('connack')
    expect(ack.reasonCode).toBe(0x82)
    expect(c.packets.filter((p) => p.cmd === 'disconnect')).toHaveLength(0)
    await c.waitClosed()
  })

  it('runs a pluggable method from BrokerOptions.authenticationMethods', async () => {
    const steps: string[] = []
    const challenge: AuthMethodFactory = ({ runtime }) => {
      let round = 0
      return {
        async step(data) {
          steps.push(data?.toString() ?? '')
          if (round++ === 0) return { status: 'continue', data: Buffer.from('what is the word?') }
          if (data?.toString() !== 'bird')
            return { status: 'failure', reasonCode: 0x87, reason: 'wrong word' }
          return { status: 'success', user: (await runtime.findUser('alice'))!, data: Buffer.from('ok') }
        },
      }
    }
    make({ authenticationMethods: { challenge } })
    const c = pairClient(fx.broker, 5)
    c.send({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 5,
      clean: true,
      clientId: 'plug',
      keepalive: 0,
      properties: { authenticationMethod: 'challenge', authenticationData: Buffer.from('hello') },
    })
    const q = await c.next('auth')
    expect(q.properties?.authenticationData?.toString()).toBe('what is the word?')
    c.send({
      cmd: 'auth',
      reasonCode: 0x18,
      properties: { authenticationMethod: 'challenge', authenticationData: Buffer.from('bird') },
    })
    const ack = await c.next('connack')
    expect(ack.reasonCode).toBe(0)
    expect(ack.properties?.authenticationData?.toString()).toBe('ok')
    expect(steps).toEqual(['hello', 'bird'])
    // SCRAM is not there when the methods are replaced.
    const s = pairClient(fx.broker, 5)
    expect((await s.connect({ properties: { authenticationMethod: METHOD } })).reasonCode).toBe(0x8c)
  })

  it('stops the exchange and its timeout when the client goes away mid-exchange', async () => {
    const endless: AuthMethodFactory = () => ({
      async step() {
        return { status: 'continue', data: Buffer.from('again') }
      },
    })
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    make({ authenticationMethods: { endless } })
    const c = pairClient(fx.broker, 5)
    c.send({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 5,
      clean: true,
      clientId: 'gone',
      keepalive: 0,
      properties: { authenticationMethod: 'endless' },
    })
    await c.next('auth')
    c.end()
    await vi.waitFor(() => expect(fx.broker.connectionCount).toBe(0))
    expect(vi.getTimerCount()).toBe(0)
  })
})

describe('enhanced authentication with MQTT.js v5', () => {
  it('connects with SCRAM-SHA-256 through handleAuth', async () => {
    const tb = await startBroker({ requireAuthentication: true }, fx.rt)
    let c: MqttClient | undefined
    try {
      const scram = scramClient('alice', 'wonder land')
      c = mqtt.connect(`mqtt://127.0.0.1:${tb.port}`, {
        protocolVersion: 5,
        reconnectPeriod: 0,
        clientId: 'mqttjs-scram',
        properties: { authenticationMethod: METHOD, authenticationData: scram.first },
      })
      c.handleAuth = (packet, callback) => {
        const serverFirst = packet.properties!.authenticationData!.toString()
        callback(undefined, {
          cmd: 'auth',
          reasonCode: 0x18,
          properties: { authenticationMethod: METHOD, authenticationData: scram.final(serverFirst) },
        })
      }
      const connack = await new Promise<mqtt.IConnackPacket>((resolve, reject) => {
        c!.once('connect', resolve)
        c!.once('error', reject)
      })
      expect(connack.reasonCode).toBe(0)
      expect(scram.verify(connack.properties?.authenticationData)).toBe(true)
      await c.publishAsync('scram/hello', 'hi', { qos: 1 })
    } finally {
      await c?.endAsync(true)
      await tb.close()
    }
  })
})

describe('back-off after failed passwords', () => {
  it('answers CONNACK 0x89 (v5) / 0x03 (3.1.1) without checking the password while a user is backed off', async () => {
    const rt = await openTestRuntime({
      auth: { scramIterations: 4096, maxFailuresPerUser: 1, maxBackoffMs: 30_000 },
    })
    const broker = createBroker({ runtime: rt.runtime })
    try {
      await rt.runtime.users.add('bob', 'right')
      const connect = async (version: 4 | 5, password: string) => {
        const c = pairClient(broker, version)
        c.send({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: version,
          clean: true,
          clientId: `c-${password}-${version}`,
          keepalive: 0,
          username: 'bob',
          password: Buffer.from(password),
        })
        return c.next('connack')
      }
      // one failure is free, the second starts the back-off
      expect((await connect(5, 'wrong1')).reasonCode).toBe(0x86)
      expect((await connect(4, 'wrong2')).returnCode).toBe(4)
      const busy = await connect(5, 'right')
      expect(busy.reasonCode).toBe(0x89)
      expect(busy.properties?.reasonString).toMatch(/too many failed attempts/)
      expect((await connect(4, 'right')).returnCode).toBe(3)
    } finally {
      await broker.close()
      await rt.close()
    }
  })
})
