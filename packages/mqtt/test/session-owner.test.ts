import { tempDir } from '@proj/test-utils'
import { describe, expect, it } from 'vitest'
import {
  openTestRuntime,
  type RawClient,
  startBroker,
  type TestBroker,
  type TestRuntime,
  useClosers,
} from './helpers.js'

const DEVICE_ROLE = { name: 'device', topics: [{ filter: 'devices/%u/#', publish: true, subscribe: true }] }
const PASSWORD = Buffer.from('pw')

const closers = useClosers()

/** A temp dir removed after the test, once the runtimes on it are closed. */
async function dataDir(): Promise<{ path: string }> {
  const tmp = await tempDir('mqtt-owner-')
  closers.add({ close: tmp.remove })
  return tmp
}

async function runtimeOn(dir: string, roles: object[]): Promise<TestRuntime> {
  return closers.add(await openTestRuntime({ roles }, dir))
}

async function brokerOn(rt: TestRuntime): Promise<TestBroker> {
  return closers.add(await startBroker({}, rt))
}

const client = (tb: TestBroker, version: 4 | 5 = 4): Promise<RawClient> => closers.tcp(tb, version)

/**
 * Bob connects with client id `id` and a persistent session, subscribes `devices/bob/#` at QoS 1 and
 * leaves with one message unacknowledged; resolves with that message's packet id.
 */
async function bobLeavesMessageInFlight(tb: TestBroker, id: string): Promise<number> {
  const bob = await client(tb)
  await bob.connect({ clientId: id, clean: false, username: 'bob', password: PASSWORD })
  bob.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'devices/bob/#', qos: 1 }] })
  expect((await bob.next('suback')).granted).toEqual([1])
  const pub = await client(tb)
  await pub.connect({ clientId: `${id}-pub`, username: 'bob', password: PASSWORD })
  pub.send({
    cmd: 'publish',
    topic: 'devices/bob/door',
    payload: 'open',
    qos: 1,
    messageId: 1,
    retain: false,
    dup: false,
  })
  await pub.next('puback')
  const msg = await bob.next('publish')
  expect(msg.payload.toString()).toBe('open')
  // The broker has seen the connection go (the session is offline, not in a takeover).
  const gone = new Promise<void>((resolve) => {
    const on = (session: { clientId: string }) => {
      if (session.clientId !== id) return
      tb.broker.events.off('disconnected', on)
      resolve()
    }
    tb.broker.events.on('disconnected', on)
  })
  bob.end()
  await gone
  pub.end()
  return msg.messageId!
}

/** Bob resumes: his session is there, his message comes again (same id, DUP), his subscription works. */
async function bobResumesIntact(tb: TestBroker, id: string, packetId: number): Promise<void> {
  const bob = await client(tb)
  const ack = await bob.connect({ clientId: id, clean: false, username: 'bob', password: PASSWORD })
  expect([ack.returnCode, ack.sessionPresent]).toEqual([0, true])
  const again = await bob.next('publish')
  expect([again.topic, again.payload.toString(), again.messageId, again.dup]).toEqual([
    'devices/bob/door',
    'open',
    packetId,
    true,
  ])
  bob.send({ cmd: 'puback', messageId: packetId })
  // Still subscribed: a new message reaches him.
  bob.send({
    cmd: 'publish',
    topic: 'devices/bob/window',
    payload: 'shut',
    qos: 1,
    messageId: 9,
    retain: false,
    dup: false,
  })
  await bob.next('puback')
  expect((await bob.next('publish')).payload.toString()).toBe('shut')
}

describe('a session belongs to the user who created it', () => {
  it('refuses another user or an anonymous client that connects with its client id (3.1.1 0x02, v5 0x85); the session stays intact', async () => {
    const tmp = await dataDir()
    const rt = await runtimeOn(tmp.path, [DEVICE_ROLE])
    await rt.runtime.users.add('bob', 'pw', { role: 'device' })
    await rt.runtime.users.add('eve', 'pw', { role: 'device' })
    const tb = await brokerOn(rt)
    const packetId = await bobLeavesMessageInFlight(tb, 'X')

    const attempts: [4 | 5, Record<string, unknown>][] = [
      [4, { clean: false }], // anonymous, resume
      [4, { clean: true }], // anonymous, clean start: must not end bob's session either
      [4, { clean: false, username: 'eve', password: PASSWORD }],
      [4, { clean: true, username: 'eve', password: PASSWORD }],
      [5, { clean: false, properties: { sessionExpiryInterval: 300 } }],
      [5, { clean: true, username: 'eve', password: PASSWORD }],
    ]
    for (const [version, fields] of attempts) {
      const intruder = await client(tb, version)
      const ack = await intruder.connect({ clientId: 'X', ...fields })
      const code = version === 5 ? ack.reasonCode : ack.returnCode
      expect({ fields, code, sessionPresent: ack.sessionPresent }).toEqual({
        fields,
        code: version === 5 ? 0x85 : 0x02,
        sessionPresent: false,
      })
      await intruder.waitClosed()
      expect(intruder.packets.filter((p) => p.cmd === 'publish')).toEqual([])
    }

    await bobResumesIntact(tb, 'X', packetId)
  })

  it('refuses another user while the owner is connected, without taking the owner’s connection over', async () => {
    const tmp = await dataDir()
    const rt = await runtimeOn(tmp.path, [DEVICE_ROLE])
    await rt.runtime.users.add('bob', 'pw', { role: 'device' })
    const tb = await brokerOn(rt)
    const bob = await client(tb, 5)
    await bob.connect({ clientId: 'Y', username: 'bob', password: PASSWORD })
    const intruder = await client(tb, 5)
    expect((await intruder.connect({ clientId: 'Y' })).reasonCode).toBe(0x85)
    await intruder.waitClosed()
    bob.send({ cmd: 'pingreq' })
    await bob.next('pingresp')
    expect(bob.packets.filter((p) => p.cmd === 'disconnect')).toEqual([])
    // The same user may take over.
    const bob2 = await client(tb, 5)
    expect((await bob2.connect({ clientId: 'Y', username: 'bob', password: PASSWORD })).reasonCode).toBe(0)
    expect((await bob.next('disconnect')).reasonCode).toBe(0x8e)
  })

  it('an anonymous session is not taken by a user', async () => {
    const tmp = await dataDir()
    const rt = await runtimeOn(tmp.path, [DEVICE_ROLE])
    await rt.runtime.users.add('anonymous', 'pw', { role: 'device' })
    const tb = await brokerOn(rt)
    const anon = await client(tb)
    await anon.connect({ clientId: 'Z', clean: false })
    anon.end()
    await anon.closedPromise
    // Even a real user who happens to be called "anonymous".
    const named = await client(tb)
    const ack = await named.connect({
      clientId: 'Z',
      clean: false,
      username: 'anonymous',
      password: PASSWORD,
    })
    expect(ack.returnCode).toBe(0x02)
    const again = await client(tb)
    expect((await again.connect({ clientId: 'Z', clean: false })).sessionPresent).toBe(true)
  })

  it('does not resend an in-flight message the user may no longer receive', async () => {
    const tmp = await dataDir()
    const rt = await runtimeOn(tmp.path, [DEVICE_ROLE])
    await rt.runtime.users.add('bob', 'pw', { role: 'device' })
    const tb = await brokerOn(rt)
    await bobLeavesMessageInFlight(tb, 'W')
    await tb.close()
    await rt.close()

    // Restarted with bob's role narrowed to other topics.
    const rt2 = await runtimeOn(tmp.path, [
      { name: 'device', topics: [{ filter: 'other/%u/#', publish: true, subscribe: true }] },
    ])
    const tb2 = await brokerOn(rt2)
    const bob = await client(tb2)
    const ack = await bob.connect({ clientId: 'W', clean: false, username: 'bob', password: PASSWORD })
    expect(ack.sessionPresent).toBe(true)
    // Barrier: a message on a topic he may read arrives; nothing from devices/bob came before it.
    bob.send({ cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: 'other/bob/#', qos: 1 }] })
    await bob.next('suback')
    bob.send({
      cmd: 'publish',
      topic: 'other/bob/x',
      payload: 'ok',
      qos: 1,
      messageId: 3,
      retain: false,
      dup: false,
    })
    const got = await bob.next('publish')
    expect(got.topic).toBe('other/bob/x')
    expect(bob.packets.filter((p) => p.cmd === 'publish')).toEqual([])
  })
})
