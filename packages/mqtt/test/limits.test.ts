import { execFile, spawn } from 'node:child_process'
import { promisify } from 'node:util'
import { waitFor } from '@proj/test-utils'
import mqttPacket from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import { pairClient, RawClient, startBroker, useBrokerFixture } from './helpers.js'

const fx = useBrokerFixture()
const { make } = fx

describe('limits', () => {
  it('disconnects a v5 client that exceeds the receive maximum with 0x93 [MQTT-3.3.4-9]', async () => {
    make({ receiveMaximum: 2 })
    const c = pairClient(fx.broker, 5)
    const ack = await c.connect()
    expect(ack.properties?.receiveMaximum).toBe(2)
    // QoS 2 messages stay counted until PUBCOMP: the third unreleased one exceeds the quota.
    for (const id of [1, 2, 3]) {
      c.send({
        cmd: 'publish',
        topic: 'rm/x',
        payload: 'x',
        qos: 2,
        messageId: id,
        retain: false,
        dup: false,
      })
    }
    const d = await c.next('disconnect')
    expect(d.reasonCode).toBe(0x93)
    await c.waitClosed()
  })

  it('refuses a packet above the maximum packet size (v5 DISCONNECT 0x95)', async () => {
    make({ maxPacketSize: 1024 })
    const c = pairClient(fx.broker, 5)
    expect((await c.connect()).properties?.maximumPacketSize).toBe(1024)
    c.send({ cmd: 'publish', topic: 'big', payload: Buffer.alloc(2000), qos: 0, retain: false, dup: false })
    expect((await c.next('disconnect')).reasonCode).toBe(0x95)
    await c.waitClosed()
  })

  it('does not send a packet larger than the client allows [MQTT-3.1.2-24]', async () => {
    make()
    const small = pairClient(fx.broker, 5)
    await small.connect({ properties: { maximumPacketSize: 100 } })
    small.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'mps/#', qos: 0 }] })
    await small.next('suback')
    const p = pairClient(fx.broker, 5)
    await p.connect()
    p.send({
      cmd: 'publish',
      topic: 'mps/big',
      payload: Buffer.alloc(500, 0x61),
      qos: 0,
      retain: false,
      dup: false,
    })
    p.send({ cmd: 'publish', topic: 'mps/small', payload: 'ok', qos: 0, retain: false, dup: false })
    const got = await small.next('publish')
    expect(got.topic).toBe('mps/small')
  })

  it('refuses a topic alias of 0 or above the maximum with 0x94', async () => {
    make({ topicAliasMaximum: 2 })
    const c = pairClient(fx.broker, 5)
    expect((await c.connect()).properties?.topicAliasMaximum).toBe(2)
    c.send({
      cmd: 'publish',
      topic: 'ta/x',
      payload: 'x',
      qos: 0,
      retain: false,
      dup: false,
      properties: { topicAlias: 3 },
    })
    expect((await c.next('disconnect')).reasonCode).toBe(0x94)
  })

  it('refuses a topic name with wildcards (v5 0x90) and a PUBLISH flagged UTF-8 that is not (PUBACK 0x99)', async () => {
    make()
    const c = pairClient(fx.broker, 5)
    await c.connect()
    c.send({
      cmd: 'publish',
      topic: 'u/x',
      payload: Buffer.from([0xff, 0xfe]),
      qos: 1,
      messageId: 1,
      retain: false,
      dup: false,
      properties: { payloadFormatIndicator: true },
    })
    expect((await c.next('puback')).reasonCode).toBe(0x99)
    c.send(Buffer.from([0x30, 6, 0, 3, 0x61, 0x2f, 0x23, 0]))
    expect((await c.next('disconnect')).reasonCode).toBe(0x90)
  })

  it('refuses a retained publish to a topic too long to store: v5 PUBACK 0x90, not 0x99; nothing stored', async () => {
    make()
    const topic = `long/${'t'.repeat(2500)}`
    const c = pairClient(fx.broker, 5)
    await c.connect()
    c.send({ cmd: 'publish', topic, payload: 'x', qos: 1, messageId: 1, retain: true, dup: false })
    expect((await c.next('puback')).reasonCode).toBe(0x90)
    // the connection stays usable, and nothing was stored
    c.send({ cmd: 'pingreq' })
    await c.next('pingresp')
    const admin = { user: { username: 'admin', role: 'admin', superUser: true } }
    expect(await fx.rt.runtime.get(topic, admin)).toBeUndefined()
  })

  it('limits connections per user (v5 0x97)', async () => {
    await fx.rt.runtime.users.add('carol', 'pw')
    make({ maxConnectionsPerUser: 1 })
    const a = pairClient(fx.broker, 5)
    expect((await a.connect({ username: 'carol', password: Buffer.from('pw') })).reasonCode).toBe(0)
    const b = pairClient(fx.broker, 5)
    expect((await b.connect({ username: 'carol', password: Buffer.from('pw') })).reasonCode).toBe(0x97)
  })

  it('answers CONNACK 0x97 (3.1.1: 0x03) past maxConnections, before checking credentials; a closed connection frees its place', async () => {
    make({ maxConnections: 2 })
    const failed: unknown[] = []
    fx.broker.events.on('auth-failed', (x) => failed.push(x))
    const a = pairClient(fx.broker, 5)
    expect((await a.connect({ clientId: 'a' })).reasonCode).toBe(0)
    const b = pairClient(fx.broker, 4)
    expect((await b.connect({ clientId: 'b' })).returnCode).toBe(0)
    // a socket that has not sent CONNECT holds no place
    const idle = pairClient(fx.broker, 4)
    const v5 = pairClient(fx.broker, 5)
    const refused = await v5.connect({ clientId: 'c', username: 'nobody', password: Buffer.from('x') })
    expect(refused.reasonCode).toBe(0x97)
    expect(refused.properties?.reasonString).toMatch(/connection limit/)
    await v5.waitClosed()
    const v3 = pairClient(fx.broker, 4)
    expect((await v3.connect({ clientId: 'd' })).returnCode).toBe(3)
    await v3.waitClosed()
    // refused before authentication: no failed password was counted
    expect(failed).toEqual([])
    // the same client id may always come back (its old connection gives its place up)
    const again = pairClient(fx.broker, 5)
    expect((await again.connect({ clientId: 'a' })).reasonCode).toBe(0)
    await a.waitClosed()
    b.send({ cmd: 'disconnect' })
    await b.waitClosed()
    expect((await idle.connect({ clientId: 'e' })).returnCode).toBe(0)
  })
})

describe('malformed input', () => {
  function seeded(seed: number) {
    let s = seed >>> 0
    return () => {
      s = (s * 1664525 + 1013904223) >>> 0
      return s / 2 ** 32
    }
  }

  it('closes only the connection that sends random or truncated bytes', async () => {
    const tb = await startBroker({}, fx.rt)
    try {
      const healthy = await RawClient.tcp(tb.port, 5)
      await healthy.connect({ clientId: 'healthy' })
      healthy.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'mal/#', qos: 1 }] })
      await healthy.next('suback')
      const rand = seeded(42)
      const connect = mqttPacket.generate({
        cmd: 'connect',
        clientId: 'x',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clean: true,
        keepalive: 0,
      })
      const publish = mqttPacket.generate({
        cmd: 'publish',
        topic: 'mal/x',
        payload: 'hello',
        qos: 1,
        messageId: 7,
        retain: false,
        dup: false,
      })
      const subscribe = mqttPacket.generate({
        cmd: 'subscribe',
        messageId: 2,
        subscriptions: [{ topic: 'a/#', qos: 1 }],
      })
      const cases: Buffer[] = []
      const junkCases: Buffer[] = []
      for (let i = 0; i < 20; i++) {
        // random garbage, before or after a valid CONNECT; it may look like the start of a long packet,
        // so the client half-closes after it (the fx.broker must close and must not crash)
        const len = 1 + Math.floor(rand() * 64)
        const junk = Buffer.from(Array.from({ length: len }, () => Math.floor(rand() * 256)))
        junkCases.push(i % 2 === 0 ? junk : Buffer.concat([connect, junk]))
      }
      // valid packets with a corrupted remaining length or truncated bodies behind a CONNECT
      for (const p of [publish, subscribe]) {
        for (let cut = 2; cut < p.length; cut += 3) {
          const bad = Buffer.from(p.subarray(0, cut))
          bad[1] = cut - 2 // the header claims exactly the truncated body
          cases.push(Buffer.concat([connect, bad]))
        }
      }
      cases.push(Buffer.concat([connect, Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f])])) // 5-byte length
      cases.push(Buffer.concat([connect, Buffer.from([0xf0, 0])])) // AUTH on 3.1.1 (reserved type)
      cases.push(Buffer.concat([connect, Buffer.from([0x82, 3, 0, 1, 0])])) // SUBSCRIBE without a filter
      cases.push(Buffer.concat([connect, Buffer.from([0x62, 2, 0, 1]).fill(0x60, 0, 1)])) // PUBREL with wrong flags
      let closed = 0
      await Promise.all([
        // complete but malformed packets: the fx.broker closes on its own
        ...cases.map(async (bytes) => {
          const c = await RawClient.tcp(tb.port)
          c.send(bytes)
          await c.waitClosed(5000)
          closed++
        }),
        ...junkCases.map(async (bytes) => {
          const c = await RawClient.tcp(tb.port)
          c.send(bytes)
          c.stream.end()
          await c.waitClosed(5000)
          closed++
        }),
      ])
      expect(closed).toBe(cases.length + junkCases.length)
      // The healthy connection still works.
      const pub = await RawClient.tcp(tb.port)
      await pub.connect()
      pub.send(publish)
      await pub.next('puback')
      expect((await healthy.next('publish')).topic).toBe('mal/x')
      expect(healthy.closed).toBe(false)
      pub.end()
      healthy.end()
    } finally {
      await tb.close()
    }
  }, 20_000)
})

const exec = promisify(execFile)
const hasMosquitto = await exec('sh', ['-c', 'command -v mosquitto_sub && command -v mosquitto_pub']).then(
  () => true,
  () => false,
)

describe.skipIf(!hasMosquitto)('mosquitto_pub / mosquitto_sub as clients', () => {
  it.each(['mqttv311', 'mqttv5'])('round-trips QoS 0, 1, 2 and retained messages (%s)', async (version) => {
    const tb = await startBroker({}, fx.rt)
    try {
      /** Where every mosquitto_sub/mosquitto_pub call below connects, and with which protocol. */
      const server = ['-h', '127.0.0.1', '-p', String(tb.port), '-V', version]
      const sub = spawn('mosquitto_sub', [...server, '-t', `mos/${version}/#`, '-q', '2', '-v', '-C', '4'])
      let out = ''
      sub.stdout.on('data', (d) => {
        out += d
      })
      const exited = new Promise((resolve) => sub.on('exit', resolve))
      // subscribed: the broker lists the filter once it has handled the SUBSCRIBE
      await waitFor(() => tb.broker.listClients()[0]?.subscriptions.length === 1, {
        message: 'mosquitto_sub subscribed',
      })
      // One message at a time: mosquitto_sub prints a QoS 2 message only when our PUBREL reaches it, so a
      // QoS 1 message published right after may be printed first (MQTT orders messages per topic and QoS).
      const publishAndSee = async (args: string[], line: string) => {
        await exec('mosquitto_pub', [...server, ...args])
        await waitFor(() => out.includes(`${line}\n`), { message: `mosquitto_sub printed ${line}` })
      }
      for (const q of ['0', '1', '2']) {
        await publishAndSee(
          ['-t', `mos/${version}/q${q}`, '-q', q, '-m', `m${q}`],
          `mos/${version}/q${q} m${q}`,
        )
      }
      await publishAndSee(
        ['-t', `mos/${version}/r`, '-q', '1', '-r', '-m', '{"a":1}'],
        `mos/${version}/r {"a":1}`,
      )
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))])
      sub.kill()
      expect(out.trim().split('\n')).toEqual([
        `mos/${version}/q0 m0`,
        `mos/${version}/q1 m1`,
        `mos/${version}/q2 m2`,
        `mos/${version}/r {"a":1}`,
      ])
      // retained: a later mosquitto_sub gets the record
      const { stdout } = await exec('mosquitto_sub', [
        ...server,
        '-t',
        `mos/${version}/r`,
        '-C',
        '1',
        '-W',
        '5',
      ])
      expect(stdout.trim()).toBe('{"a":1}')
    } finally {
      await tb.close()
    }
  })
})
if (!hasMosquitto)
  console.warn('mosquitto_pub/mosquitto_sub not installed: skipping (run bash scripts/ensure-system-deps.sh)')
