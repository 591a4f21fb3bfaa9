import type { Runtime, Subscription } from '@proj/resource'
import { describe, expect, it } from 'vitest'
import type { Logger } from '../src/index.js'
import { pairClient, type RawClient, useBrokerFixture } from './helpers.js'

const fx = useBrokerFixture()

interface LogEntry {
  level: 'warn' | 'error'
  fields: unknown
  message: string
}

/** A logger that keeps warn and error lines, to check that a fault is logged once with its client id. */
function recordingLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = []
  const keep =
    (level: LogEntry['level']) =>
    (...args: unknown[]) => {
      const message = String(args.find((a) => typeof a === 'string') ?? '')
      entries.push({ level, fields: args[0], message })
    }
  return { entries, debug() {}, info() {}, warn: keep('warn'), error: keep('error') }
}

/** The runtime with some methods replaced (a resource or plug-in misbehaving in one place). */
function faultyRuntime(runtime: Runtime, overrides: Partial<Runtime>): Runtime {
  return new Proxy(runtime, {
    get(target, key) {
      if (Object.hasOwn(overrides, key)) return overrides[key as keyof Runtime]
      const value = Reflect.get(target, key, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}

/** A QoS 1 round trip on a healthy connection: the broker still serves other clients. */
async function roundTrip(c: RawClient, topic: string): Promise<void> {
  c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] })
  await c.next('suback')
  c.send({ cmd: 'publish', topic, payload: 'ping', qos: 1, messageId: 2, retain: false, dup: false })
  await c.next('puback')
  const got = await c.next('publish')
  expect(got.payload.toString()).toBe('ping')
}

describe('fault containment: a fault in one connection closes that connection only', () => {
  it.each([
    ['3.1.1 empty SUBSCRIBE', 4, Buffer.from('82020001', 'hex')],
    ['v5 empty SUBSCRIBE', 5, Buffer.from('8203000100', 'hex')],
    ['v5 empty UNSUBSCRIBE', 5, Buffer.from('a203000100', 'hex')],
  ] as const)('%s closes the sender, others keep working', async (_name, version, bytes) => {
    fx.make()
    const bad = pairClient(fx.broker, version)
    await bad.connect()
    bad.send(bytes)
    await bad.waitClosed()
    if (version === 5) {
      const d = bad.packets.find((p) => p.cmd === 'disconnect')
      expect(d?.reasonCode).toBeGreaterThanOrEqual(0x80)
    }
    const good = pairClient(fx.broker, version)
    await good.connect()
    await roundTrip(good, 'contain/empty')
  })

  it('a handler that throws (runtime.publish throwing instead of rejecting): DISCONNECT 0x83, logged once', async () => {
    const logger = recordingLogger()
    const runtime = faultyRuntime(fx.rt.runtime, {
      publish(topic, message, ctx, options) {
        if (topic === 'contain/sync') throw new Error('publish exploded')
        return fx.rt.runtime.publish(topic, message, ctx, options)
      },
    })
    fx.make({ runtime, logger })
    const bad = pairClient(fx.broker, 5)
    await bad.connect({ clientId: 'sync-thrower' })
    bad.send({
      cmd: 'publish',
      topic: 'contain/sync',
      payload: 'x',
      qos: 1,
      messageId: 7,
      retain: false,
      dup: false,
    })
    // a second faulting packet in the same chunk must not log twice
    bad.send({ cmd: 'publish', topic: 'contain/sync', payload: 'x', qos: 0, retain: false, dup: false })
    expect((await bad.next('disconnect')).reasonCode).toBe(0x83)
    await bad.waitClosed()
    const errors = logger.entries.filter((e) => e.level === 'error')
    expect(errors).toHaveLength(1)
    expect(errors[0]!.message).toContain('sync-thrower')
    expect(errors[0]!.fields).toMatchObject({ clientId: 'sync-thrower' })

    const good = pairClient(fx.broker, 5)
    await good.connect()
    await roundTrip(good, 'contain/sync-ok')
  })

  it('a continuation that throws after the runtime resolved (subscription handle): DISCONNECT 0x83', async () => {
    const logger = recordingLogger()
    const runtime = faultyRuntime(fx.rt.runtime, {
      async subscribe(filter, listener, options, ctx) {
        const handle = await fx.rt.runtime.subscribe(filter, listener, options, ctx)
        if (filter !== 'contain/late') return handle
        handle.close()
        return {
          get cursor(): number {
            throw new Error('handle exploded')
          },
        } as unknown as Subscription
      },
    })
    fx.make({ runtime, logger })
    const bad = pairClient(fx.broker, 5)
    await bad.connect({ clientId: 'late-thrower' })
    bad.send({ cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: 'contain/late', qos: 1 }] })
    expect((await bad.next('disconnect')).reasonCode).toBe(0x83)
    await bad.waitClosed()
    expect(logger.entries.filter((e) => e.level === 'error')).toHaveLength(1)

    const good = pairClient(fx.broker, 5)
    await good.connect()
    await roundTrip(good, 'contain/late-ok')
  })

  it('resource code that calls a listener with a broken event, outside any packet: that subscriber is closed', async () => {
    const logger = recordingLogger()
    const runtime = faultyRuntime(fx.rt.runtime, {
      subscribe(filter, listener, options, ctx) {
        if (filter === 'contain/broken') {
          // a resource's own timer hands the subscriber something no encoder can send
          setTimeout(() => listener(null as never, undefined as never), 5)
        }
        return fx.rt.runtime.subscribe(filter, listener, options, ctx)
      },
    })
    fx.make({ runtime, logger })
    const v3 = pairClient(fx.broker, 4)
    await v3.connect({ clientId: 'broken-v3' })
    v3.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'contain/broken', qos: 0 }] })
    await v3.next('suback')
    await v3.waitClosed()

    const v5 = pairClient(fx.broker, 5)
    await v5.connect({ clientId: 'broken-v5' })
    v5.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'contain/broken', qos: 0 }] })
    await v5.next('suback')
    expect((await v5.next('disconnect')).reasonCode).toBe(0x83)
    const errors = logger.entries.filter((e) => e.level === 'error').map((e) => e.message)
    expect(errors).toEqual([expect.stringContaining('broken-v3'), expect.stringContaining('broken-v5')])

    const good = pairClient(fx.broker, 5)
    await good.connect()
    await roundTrip(good, 'contain/broken-ok')
  })

  it('a fault before CONNACK (the session store throwing) refuses with CONNACK 0x83', async () => {
    const real = fx.rt.runtime
    const runtime = faultyRuntime(real, {
      state(name) {
        const store = real.state(name)
        return faultyRuntime(
          store as never,
          {
            // a durable session's record is written before CONNACK (a new client id reads none)
            put: (key: unknown, value: unknown) => {
              if (key === 'store-victim') throw new Error('session store exploded')
              return store.put(key as never, value as never)
            },
          } as never,
        ) as never
      },
    })
    fx.make({ runtime })
    const c = pairClient(fx.broker, 5)
    const ack = await c.connect({ clientId: 'store-victim', properties: { sessionExpiryInterval: 60 } })
    expect(ack.reasonCode).toBe(0x83)
    await c.waitClosed()
  })

  it('an event listener that throws does not break the connection that emitted the event', async () => {
    const logger = recordingLogger()
    fx.make({ logger })
    fx.broker.events.on('connected', () => {
      throw new Error('listener exploded')
    })
    const c = pairClient(fx.broker, 5)
    expect((await c.connect()).reasonCode).toBe(0)
    await roundTrip(c, 'contain/listener')
    expect(logger.entries.some((e) => e.level === 'error' && e.message.includes("'connected'"))).toBe(true)
  })
})
