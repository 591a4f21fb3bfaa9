import { once, waitFor } from '@proj/test-utils'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import type { Key } from '../src/runtime.js'
import { SESSIONS_STORE, WILLS_STORE } from '../src/session-store.js'
import { openTestRuntime, pairClient, type RawClient, useBrokerFixture } from './helpers.js'

const fx = useBrokerFixture()
const { make } = fx

async function watch(filter: string, qos: 0 | 1 | 2 = 0): Promise<RawClient> {
  const w = pairClient(fx.broker)
  await w.connect()
  w.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos }] })
  await w.next('suback')
  return w
}

async function publishQos1(topic: string, payload: string, retain = false) {
  const p = pairClient(fx.broker)
  await p.connect()
  p.send({ cmd: 'publish', topic, payload, qos: 1, messageId: 1, retain, dup: false })
  await p.next('puback')
  p.end()
}

/**
 * Publishes a QoS 1 sentinel on `topic` and returns the payloads `c` receives up to and including it
 * (acknowledging QoS 1 ones). The sentinel is logged after everything published before it, so a late
 * or duplicate message would arrive first: a barrier instead of a sleep for "nothing else arrived".
 */
async function untilSentinel(c: RawClient, topic: string): Promise<string[]> {
  await publishQos1(topic, 'sentinel')
  const got: string[] = []
  for (;;) {
    const p = await c.next('publish')
    if (p.qos === 1) c.send({ cmd: 'puback', messageId: p.messageId! })
    got.push(p.payload.toString())
    if (p.topic === topic && got.at(-1) === 'sentinel') return got
  }
}

/** Ends `c` and resolves once the broker has handled the close (session offline, will settled). */
async function dropped(c: RawClient): Promise<void> {
  const gone = once(fx.broker.events, 'disconnected')
  c.end()
  await gone
}

describe('durable sessions', () => {
  it('catches up on logged messages after a reconnect, and not on older ones (v3 clean session 0)', async () => {
    make()
    await publishQos1('dur/a', 'before')
    const s1 = pairClient(fx.broker)
    expect((await s1.connect({ clientId: 'dur-1', clean: false })).sessionPresent).toBe(false)
    s1.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'dur/#', qos: 1 }] })
    await s1.next('suback')
    s1.send({ cmd: 'disconnect' })
    await s1.waitClosed()
    for (const n of ['1', '2', '3']) await publishQos1('dur/a', n)
    const s2 = pairClient(fx.broker)
    expect((await s2.connect({ clientId: 'dur-1', clean: false })).sessionPresent).toBe(true)
    const got: string[] = []
    for (let i = 0; i < 3; i++) {
      const p = await s2.next('publish')
      got.push(p.payload.toString())
      s2.send({ cmd: 'puback', messageId: p.messageId! })
    }
    expect(got).toEqual(['1', '2', '3'])
    expect(await untilSentinel(s2, 'dur/end')).toEqual(['sentinel'])
  })

  it('reads no session record for a new client id on a broker alone; a stored session resumes after a restart', async () => {
    const real = fx.rt.runtime
    let reads = 0
    // The runtime with reads of the sessions store counted.
    const runtime = new Proxy(real, {
      get(target, key) {
        if (key === 'state') {
          return (name: string) => {
            const store = target.state(name)
            if (name !== SESSIONS_STORE) return store
            return new Proxy(store, {
              get(s, k) {
                const v = Reflect.get(s, k, s)
                if (k === 'get')
                  return (key: Key) => {
                    reads++
                    return v.call(s, key)
                  }
                return typeof v === 'function' ? v.bind(s) : v
              },
            })
          }
        }
        const v = Reflect.get(target, key, target)
        return typeof v === 'function' ? v.bind(target) : v
      },
    })
    const first = make({ runtime })
    const kept = pairClient(first)
    await kept.connect({ clientId: 'kept-1', clean: false })
    kept.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'kept/#', qos: 1 }] })
    await kept.next('suback')
    kept.send({ cmd: 'disconnect' })
    await kept.waitClosed()
    await first.close()

    const second = make({ runtime }) // restores kept-1 from its record
    reads = 0
    const fresh = pairClient(second)
    expect((await fresh.connect({ clientId: 'new-1', clean: false })).sessionPresent).toBe(false)
    expect(reads).toBe(0)
    const back = pairClient(second)
    expect((await back.connect({ clientId: 'kept-1', clean: false })).sessionPresent).toBe(true)
    expect(await untilSentinel(back, 'kept/end')).toEqual(['sentinel'])
  })

  it('retransmits unacknowledged QoS 1 with DUP and the same packet id [MQTT-4.4.0-1]', async () => {
    make()
    const s1 = pairClient(fx.broker)
    await s1.connect({ clientId: 'dup-1', clean: false })
    s1.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'dup/#', qos: 1 }] })
    await s1.next('suback')
    await publishQos1('dup/x', 'hello')
    const first = await s1.next('publish')
    expect(first.dup).toBe(false)
    await dropped(s1) // no PUBACK
    const s2 = pairClient(fx.broker)
    expect((await s2.connect({ clientId: 'dup-1', clean: false })).sessionPresent).toBe(true)
    const again = await s2.next('publish')
    expect(again.dup).toBe(true)
    expect(again.messageId).toBe(first.messageId)
    expect(again.payload.toString()).toBe('hello')
    s2.send({ cmd: 'puback', messageId: again.messageId! })
    expect(await untilSentinel(s2, 'dup/end')).toEqual(['sentinel'])
  })

  it('applies an inbound QoS 2 message once, also when resent after a reconnect [MQTT-4.3.3-10]', async () => {
    make()
    /** The same QoS 2 message id 9 each time: a resend or, once released, a new message. */
    const sendQos2 = (c: RawClient, payload: string, { dup }: { dup: boolean }) =>
      c.send({ cmd: 'publish', topic: 'q2/x', payload, qos: 2, messageId: 9, retain: false, dup })
    const w = await watch('q2/#')
    const c1 = pairClient(fx.broker)
    await c1.connect({ clientId: 'q2-pub', clean: false })
    sendQos2(c1, 'once', { dup: false })
    await c1.next('pubrec')
    await dropped(c1)
    const c2 = pairClient(fx.broker)
    await c2.connect({ clientId: 'q2-pub', clean: false })
    sendQos2(c2, 'once', { dup: true })
    await c2.next('pubrec')
    c2.send({ cmd: 'pubrel', messageId: 9 })
    await c2.next('pubcomp')
    // the id is free again: a new message with it is applied
    sendQos2(c2, 'twice', { dup: false })
    await c2.next('pubrec')
    c2.send({ cmd: 'pubrel', messageId: 9 })
    await c2.next('pubcomp')
    expect(await untilSentinel(w, 'q2/end')).toEqual(['once', 'twice', 'sentinel'])
  })

  it('completes outbound QoS 2 (PUBREC -> PUBREL -> PUBCOMP) and resends PUBREL after a reconnect', async () => {
    make()
    const s1 = pairClient(fx.broker)
    await s1.connect({ clientId: 'out2', clean: false })
    s1.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'out2/#', qos: 2 }] })
    await s1.next('suback')
    await publishQos1('out2/a', 'x')
    const p = await s1.next('publish')
    expect(p.qos).toBe(1) // min(publish QoS 1, subscription QoS 2)
    s1.send({ cmd: 'puback', messageId: p.messageId! })
    const p2 = pairClient(fx.broker)
    await p2.connect()
    p2.send({
      cmd: 'publish',
      topic: 'out2/b',
      payload: 'y',
      qos: 2,
      messageId: 3,
      retain: false,
      dup: false,
    })
    await p2.next('pubrec')
    p2.send({ cmd: 'pubrel', messageId: 3 })
    await p2.next('pubcomp')
    const q2 = await s1.next('publish')
    expect(q2.qos).toBe(2)
    s1.send({ cmd: 'pubrec', messageId: q2.messageId! })
    const rel = await s1.next('pubrel')
    expect(rel.messageId).toBe(q2.messageId)
    await dropped(s1)
    const s2 = pairClient(fx.broker)
    await s2.connect({ clientId: 'out2', clean: false })
    const rel2 = await s2.next('pubrel')
    expect(rel2.messageId).toBe(q2.messageId)
    s2.send({ cmd: 'pubcomp', messageId: q2.messageId! })
    // the message is complete: not sent again before a sentinel published now
    expect(await untilSentinel(s2, 'out2/end')).toEqual(['sentinel'])
  })

  it('discards the session on clean start', async () => {
    make()
    const s1 = pairClient(fx.broker, 5)
    await s1.connect({ clientId: 'cs', clean: false, properties: { sessionExpiryInterval: 300 } })
    s1.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'cs/#', qos: 1 }] })
    await s1.next('suback')
    s1.send({ cmd: 'disconnect' })
    await s1.waitClosed()
    const s2 = pairClient(fx.broker, 5)
    expect((await s2.connect({ clientId: 'cs', clean: true })).sessionPresent).toBe(false)
    // s2's only subscription is the sentinel's topic: the old session's cs/# would deliver cs/a first
    s2.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'cs-end', qos: 1 }] })
    await s2.next('suback')
    await publishQos1('cs/a', 'x')
    expect(await untilSentinel(s2, 'cs-end')).toEqual(['sentinel'])
  })

  it('removes a v5 session when its expiry interval has passed', async () => {
    make()
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    const s1 = pairClient(fx.broker, 5)
    await s1.connect({ clientId: 'exp', clean: false, properties: { sessionExpiryInterval: 10 } })
    s1.send({ cmd: 'disconnect' })
    await s1.waitClosed()
    await vi.advanceTimersByTimeAsync(5_000)
    const s2 = pairClient(fx.broker, 5)
    expect(
      (await s2.connect({ clientId: 'exp', clean: false, properties: { sessionExpiryInterval: 10 } }))
        .sessionPresent,
    ).toBe(true)
    s2.send({ cmd: 'disconnect' })
    await s2.waitClosed()
    await vi.advanceTimersByTimeAsync(10_500)
    const s3 = pairClient(fx.broker, 5)
    expect((await s3.connect({ clientId: 'exp', clean: false })).sessionPresent).toBe(false)
  })
})

describe('wills', () => {
  it('publishes the will when the connection drops, not after DISCONNECT', async () => {
    make()
    const w = await watch('will/#')
    const a = pairClient(fx.broker)
    await a.connect({
      clientId: 'wa',
      will: { topic: 'will/a', payload: Buffer.from('a'), qos: 1, retain: false },
    })
    a.send({ cmd: 'disconnect' })
    await a.waitClosed()
    const b = pairClient(fx.broker)
    await b.connect({
      clientId: 'wb',
      will: { topic: 'will/b', payload: Buffer.from('b'), qos: 1, retain: false },
    })
    b.end()
    const p = await w.next('publish')
    expect(p.topic).toBe('will/b')
    expect(await untilSentinel(w, 'will/end')).toEqual(['sentinel'])
  })

  it('v5: DISCONNECT 0x04 sends the will; a reconnect within the will delay cancels it', async () => {
    make()
    /** A v5 session (expiry 100 s) whose will on will5/{id} waits 10 s. */
    const delayedWill = async (id: string) => {
      const c = pairClient(fx.broker, 5)
      await c.connect({
        clientId: `w5${id}`,
        clean: false,
        properties: { sessionExpiryInterval: 100 },
        will: {
          topic: `will5/${id}`,
          payload: Buffer.from(id),
          qos: 0,
          retain: false,
          properties: { willDelayInterval: 10 },
        },
      })
      return c
    }
    const w = await watch('will5/#')
    const a = pairClient(fx.broker, 5)
    await a.connect({
      clientId: 'w5a',
      will: { topic: 'will5/a', payload: Buffer.from('a'), qos: 0, retain: false },
    })
    a.send({ cmd: 'disconnect', reasonCode: 0x04 })
    expect((await w.next('publish')).topic).toBe('will5/a')
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    const b = await delayedWill('b')
    await dropped(b) // the will is scheduled on the fake clock before it moves
    await vi.advanceTimersByTimeAsync(5_000)
    const b2 = pairClient(fx.broker, 5)
    await b2.connect({ clientId: 'w5b', clean: false, properties: { sessionExpiryInterval: 100 } })
    await vi.advanceTimersByTimeAsync(20_000)
    vi.useRealTimers()
    expect(await untilSentinel(w, 'will5/end')).toEqual(['sentinel'])
    // without a reconnect the delayed will goes out
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    const c = await delayedWill('c')
    await dropped(c)
    await vi.advanceTimersByTimeAsync(10_500)
    vi.useRealTimers()
    expect((await w.next('publish')).topic).toBe('will5/c')
  })
})

describe('authentication and permissions', () => {
  it('checks user name and password (v3 return code 4, v5 0x86) and refuses anonymous when it is off', async () => {
    const rt2 = await openTestRuntime({ allowAnonymous: false })
    try {
      await rt2.runtime.users.add('alice', 'secret')
      make({}, rt2)
      const failures: string[] = []
      fx.broker.events.on('auth-failed', (d) => failures.push(`${d.username}:${d.reason}`))
      const ok = pairClient(fx.broker)
      expect((await ok.connect({ username: 'alice', password: Buffer.from('secret') })).returnCode).toBe(0)
      const bad3 = pairClient(fx.broker)
      expect((await bad3.connect({ username: 'alice', password: Buffer.from('nope') })).returnCode).toBe(4)
      const bad5 = pairClient(fx.broker, 5)
      expect((await bad5.connect({ username: 'alice', password: Buffer.from('nope') })).reasonCode).toBe(0x86)
      const anon3 = pairClient(fx.broker)
      expect((await anon3.connect()).returnCode).toBe(5)
      const anon5 = pairClient(fx.broker, 5)
      expect((await anon5.connect()).reasonCode).toBe(0x87)
      expect(failures).toHaveLength(4)
      await bad3.waitClosed()
      await fx.broker.close()
      // mTLS: the certificate names the user
      make({}, rt2)
      const [a, b] = (await import('./helpers.js')).duplexPair()
      fx.broker.handle(b, { transport: 'tls', certificateUser: 'alice' })
      const { RawClient } = await import('./helpers.js')
      const cert = new RawClient(a, 4)
      expect((await cert.connect()).returnCode).toBe(0)
    } finally {
      await fx.broker.close()
      await rt2.close()
    }
  })

  it('refuses what the role does not permit: SUBACK 0x80/0x87, v5 PUBACK 0x87, record unchanged', async () => {
    const rt2 = await openTestRuntime({
      roles: [{ name: 'limited', topics: [{ filter: 'open/#', publish: true, subscribe: true }] }],
    })
    try {
      await rt2.runtime.users.add('bob', 'pw', { role: 'limited' })
      make({}, rt2)
      const v3 = pairClient(fx.broker)
      await v3.connect({ username: 'bob', password: Buffer.from('pw') })
      v3.send({
        cmd: 'subscribe',
        messageId: 1,
        subscriptions: [
          { topic: 'open/#', qos: 1 },
          { topic: 'closed/#', qos: 1 },
        ],
      })
      expect((await v3.next('suback')).granted).toEqual([1, 0x80])
      const v5 = pairClient(fx.broker, 5)
      await v5.connect({ username: 'bob', password: Buffer.from('pw') })
      v5.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'closed/#', qos: 1 }] })
      expect((await v5.next('suback')).granted).toEqual([0x87])
      v5.send({
        cmd: 'publish',
        topic: 'closed/x',
        payload: 'no',
        qos: 1,
        messageId: 2,
        retain: true,
        dup: false,
      })
      expect((await v5.next('puback')).reasonCode).toBe(0x87)
      // v3.1.1 has no negative PUBACK: acknowledged (as Mosquitto does), not applied
      v3.send({
        cmd: 'publish',
        topic: 'closed/y',
        payload: 'no',
        qos: 1,
        messageId: 2,
        retain: true,
        dup: false,
      })
      expect((await v3.next('puback')).messageId).toBe(2)
      const ctx = { user: null }
      expect(await rt2.runtime.get('closed/x', ctx)).toBeUndefined()
      expect(await rt2.runtime.get('closed/y', ctx)).toBeUndefined()
    } finally {
      await fx.broker.close()
      await rt2.close()
    }
  })
})

describe('state store failures', () => {
  /**
   * The file's runtime, with writes to state store `failStore` (and publishes) failing while `failing.on`
   * is set; `failing.refused` counts the writes refused.
   */
  function failingRuntime(failStore: string) {
    const failing = { on: false, refused: 0 }
    const refuse = (what: string) => {
      failing.refused++
      return Promise.reject(new Error(what))
    }
    const real = fx.rt.runtime
    const runtime = new Proxy(real, {
      get(target, key) {
        if (key === 'state') {
          return (name: string) => {
            const store = target.state(name)
            if (name !== failStore) return store
            return {
              name: store.name,
              get: (k: Key) => store.get(k),
              version: (k: Key) => store.version(k),
              entries: (o?: { prefix?: string }) => store.entries(o),
              accepts: (k: Key) => store.accepts(k),
              put: (k: Key, v: unknown) => (failing.on ? refuse('disk full') : store.put(k, v as never)),
              delete: (k: Key) => (failing.on ? refuse('disk full') : store.delete(k)),
            }
          }
        }
        if (key === 'publish' && failing.on) return () => Promise.reject(new Error('refused'))
        const v = Reflect.get(target, key, target)
        return typeof v === 'function' ? v.bind(target) : v
      },
    })
    return { failing, runtime }
  }

  /**
   * The broker has hit a refused write: once the event loop turns, Node has reported any rejection left
   * unhandled (it does so after each macrotask's microtasks drain).
   */
  async function afterRefusal(failing: { refused: number }): Promise<void> {
    await waitFor(() => failing.refused > 0, { message: 'a refused write' })
    await new Promise((r) => setImmediate(r))
  }

  /** Records unhandled rejections while the test runs. */
  function unhandledRejections(): unknown[] {
    const seen: unknown[] = []
    const onRejection = (reason: unknown) => seen.push(reason)
    process.on('unhandledRejection', onRejection)
    onTestFinished(() => {
      process.off('unhandledRejection', onRejection)
    })
    return seen
  }

  it('still answers SUBSCRIBE when the durable session record cannot be written', async () => {
    const seen = unhandledRejections()
    const { failing, runtime } = failingRuntime(SESSIONS_STORE)
    make({ runtime })
    const c = pairClient(fx.broker)
    await c.connect({ clientId: 'save-fails', clean: false })
    failing.on = true
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'sf/#', qos: 1 }] })
    expect((await c.next('suback')).granted).toEqual([1])
    await afterRefusal(failing)
    failing.on = false
    expect(seen).toEqual([])
  })

  it('leaves no unhandled rejection when erasing an ended session fails', async () => {
    const seen = unhandledRejections()
    const { failing, runtime } = failingRuntime(SESSIONS_STORE)
    make({ runtime })
    const c = pairClient(fx.broker, 5)
    await c.connect({ clientId: 'erase-fails', properties: { sessionExpiryInterval: 60 } })
    failing.on = true
    // Session Expiry Interval 0 at DISCONNECT ends the (persisted) session now.
    c.send({ cmd: 'disconnect', properties: { sessionExpiryInterval: 0 } })
    await c.waitClosed()
    await afterRefusal(failing)
    failing.on = false
    expect(seen).toEqual([])
  })
  it('leaves no unhandled rejection when a refused will cannot be deleted either', async () => {
    const seen = unhandledRejections()
    const { failing, runtime } = failingRuntime(WILLS_STORE)
    make({ runtime })
    const c = pairClient(fx.broker)
    await c.connect({ will: { topic: 'wf/gone', payload: Buffer.from('bye'), qos: 0, retain: false } })
    failing.on = true
    c.end()
    await afterRefusal(failing)
    failing.on = false
    expect(seen).toEqual([])
  })
})
