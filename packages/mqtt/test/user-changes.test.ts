import { once, waitFor } from '@proj/test-utils'
import { describe, expect, it, vi } from 'vitest'
import {
  openTestRuntime,
  type RawClient,
  startBroker,
  type TestBroker,
  type TestRuntime,
  useClosers,
} from './helpers.js'

const READER = { name: 'reader', tables: { '*': { read: true } }, topics: [{ filter: '#', subscribe: true }] }
const PASSWORD = Buffer.from('pw')

const closers = useClosers()

async function setUp(): Promise<{ rt: TestRuntime; tb: TestBroker }> {
  const rt = closers.add(await openTestRuntime({ roles: [READER] }))
  await rt.runtime.users.add('bob', 'pw')
  const tb = closers.add(await startBroker({}, rt))
  return { rt, tb }
}

const client = (tb: TestBroker, version: 4 | 5 = 5): Promise<RawClient> => closers.tcp(tb, version)

/** An anonymous watcher of `wills/#`; `nothingBefore()` publishes a sentinel and returns the other topics received before it. */
async function watcher(tb: TestBroker): Promise<{ c: RawClient; nothingBefore(): Promise<string[]> }> {
  const c = await client(tb, 4)
  await c.connect({ clientId: 'watcher' })
  c.send({
    cmd: 'subscribe',
    messageId: 1,
    subscriptions: [
      { topic: 'wills/#', qos: 1 },
      { topic: 'sentinel', qos: 1 },
    ],
  })
  await c.next('suback')
  return {
    c,
    async nothingBefore() {
      c.send({
        cmd: 'publish',
        topic: 'sentinel',
        payload: 'x',
        qos: 1,
        messageId: 9,
        retain: false,
        dup: false,
      })
      await c.next('publish', (p) => p.topic === 'sentinel')
      return c.packets.filter((p) => p.cmd === 'publish').map((p) => (p as { topic: string }).topic)
    },
  }
}

const bobWithWill = (delay = 0) => ({
  clientId: 'bob-1',
  clean: false,
  username: 'bob',
  password: PASSWORD,
  properties: { sessionExpiryInterval: 3600 },
  will: {
    topic: 'wills/bob',
    payload: Buffer.from('gone'),
    qos: 1 as const,
    retain: false,
    properties: { willDelayInterval: delay },
  },
})

describe('user changes', () => {
  it('disconnects a deleted user (0x87), drops its will and ends its session', async () => {
    const { rt, tb } = await setUp()
    const w = await watcher(tb)
    const bob = await client(tb)
    expect((await bob.connect(bobWithWill())).reasonCode).toBe(0)
    bob.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'devices/#', qos: 1 }] })
    await bob.next('suback')
    await rt.runtime.users.delete('bob')
    const disconnect = await bob.next('disconnect')
    expect(disconnect.reasonCode).toBe(0x87)
    await bob.waitClosed()
    expect(await w.nothingBefore()).toEqual([])
    expect([...rt.runtime.state('mqtt-wills').entries()]).toEqual([])
    // a new user of the same name gets no session (and no subscriptions) of the old one
    await rt.runtime.users.add('bob', 'pw')
    const again = await client(tb)
    const connack = await again.connect({
      clientId: 'bob-1',
      clean: false,
      username: 'bob',
      password: PASSWORD,
      properties: { sessionExpiryInterval: 3600 },
    })
    expect(connack.sessionPresent).toBe(false)
  })

  it('discards the delayed will of a deleted user that is already offline', async () => {
    const { rt, tb } = await setUp()
    const w = await watcher(tb)
    const bob = await client(tb)
    await bob.connect(bobWithWill(1))
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    const gone = once(tb.broker.events, 'disconnected')
    bob.end() // no DISCONNECT: the will is due in 1 s on the fake clock
    await gone // the broker has scheduled it
    await rt.runtime.users.delete('bob') // resolves once the broker has been told
    await vi.advanceTimersByTimeAsync(1500) // past the will's due time
    vi.useRealTimers()
    expect(await w.nothingBefore()).toEqual([])
    expect([...rt.runtime.state('mqtt-wills').entries()]).toEqual([])
  })

  it('never publishes the will of a user that no longer exists as anonymous', async () => {
    const { rt, tb } = await setUp()
    const w = await watcher(tb)
    const bob = await client(tb)
    await bob.connect(bobWithWill())
    // removed behind the broker's back (no change event): the will finds no owner when it goes out
    await rt.runtime.state('__users').delete('bob')
    bob.end()
    await bob.waitClosed()
    // The will record goes when the will is dropped, or in the transaction that publishes it.
    await waitFor(() => [...rt.runtime.state('mqtt-wills').entries()].length === 0, {
      message: 'will settled',
    })
    expect(await w.nothingBefore()).toEqual([])
  })

  it('disconnects a user whose role changed (0x98); it reconnects with the new rights', async () => {
    const { rt, tb } = await setUp()
    const bob = await client(tb)
    await bob.connect({ clientId: 'bob-2', username: 'bob', password: PASSWORD })
    await rt.runtime.users.update('bob', { role: 'reader' })
    expect((await bob.next('disconnect')).reasonCode).toBe(0x98)
    await bob.waitClosed()
    const again = await client(tb)
    expect((await again.connect({ clientId: 'bob-2', username: 'bob', password: PASSWORD })).reasonCode).toBe(
      0,
    )
    again.send({
      cmd: 'publish',
      topic: 'anything/x',
      payload: '1',
      qos: 1,
      messageId: 1,
      retain: false,
      dup: false,
    })
    expect((await again.next('puback')).reasonCode).toBe(0x87)
  })

  it('keeps connections open after a password change and for other users', async () => {
    const { rt, tb } = await setUp()
    await rt.runtime.users.add('sam', 'pw')
    const bob = await client(tb)
    await bob.connect({ clientId: 'bob-3', username: 'bob', password: PASSWORD })
    const sam = await client(tb)
    await sam.connect({ clientId: 'sam-1', username: 'sam', password: PASSWORD })
    await rt.runtime.users.setPassword('bob', 'new')
    await rt.runtime.users.delete('sam')
    await sam.next('disconnect')
    bob.send({ cmd: 'pingreq' })
    await bob.next('pingresp')
    expect(bob.closed).toBe(false)
  })
})
