import { expect, it } from 'vitest'
import { closedBy } from './helpers/clients.js'
import { collectPayloads as collect, describeCluster, useMqttCluster, within } from './helpers/cluster.js'

const NODES = ['a', 'b', 'c']

describeCluster('MQTT sessions across a cluster of three nodes', () => {
  const fixture = useMqttCluster(NODES)
  const mqttOn = fixture.mqttOn.bind(fixture)

  it('takes a client id over from another node: MQTT 5 DISCONNECT 0x8E, 3.1.1 closed', async () => {
    const first = await mqttOn('a', { clientId: 'take-5', protocolVersion: 5 })
    const firstClosed = closedBy(first)
    const second = await mqttOn('b', { clientId: 'take-5', protocolVersion: 5 })
    expect(await firstClosed).toBe(0x8e)
    expect(second.connected).toBe(true)

    const old = await mqttOn('c', { clientId: 'take-4', protocolVersion: 4 })
    const oldClosed = closedBy(old)
    await mqttOn('a', { clientId: 'take-4', protocolVersion: 4 })
    expect(await oldClosed).toBeUndefined()
    // and back to the node that lost it
    const again = await mqttOn('b', { clientId: 'take-5', protocolVersion: 5 }).catch((e) => e)
    expect(again).not.toBeInstanceOf(Error)
  }, 30_000)

  it('resumes a durable session created on one node on another, with every QoS 1/2 message it missed', async () => {
    const options = { clientId: 'roamer', protocolVersion: 5 as const, clean: false }
    const props = { properties: { sessionExpiryInterval: 300 } }
    const onA = await mqttOn('a', { ...options, ...props })
    await onA.subscribeAsync({ 'roam/q1': { qos: 1 }, 'roam/q2': { qos: 2 } })
    await onA.endAsync()

    const publisher = await mqttOn('c', { protocolVersion: 5 })
    const N = 20
    for (let i = 0; i < N; i++) {
      await within(`publish roam/q1 m${i}`, publisher.publishAsync('roam/q1', `m${i}`, { qos: 1 }))
      await within(`publish roam/q2 m${i}`, publisher.publishAsync('roam/q2', `m${i}`, { qos: 2 }))
    }
    const { got, sessionPresent } = await fixture.resumeOn('b', { ...options, ...props }, collect)
    expect(sessionPresent).toBe(true)
    await within('publish roam/q2 end', publisher.publishAsync('roam/q2', 'end', { qos: 2 }))
    await expect.poll(() => got('roam/q2').at(-1), { timeout: 15_000 }).toBe('end')
    const all = Array.from({ length: N }, (_, i) => `m${i}`)
    expect(got('roam/q2')).toEqual([...all, 'end']) // exactly once, in order
    expect(new Set(got('roam/q1'))).toEqual(new Set(all))
  }, 60_000)

  it('makes SUBSCRIBE and UNSUBSCRIBE of a durable session count on another node at once', async () => {
    const options = {
      clientId: 'changer',
      protocolVersion: 5 as const,
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    }
    const onB = await mqttOn('b', options)
    await onB.subscribeAsync({ 'chg/old': { qos: 1 } })
    await onB.subscribeAsync({ 'chg/new': { qos: 1 } })
    await onB.unsubscribeAsync('chg/old')
    await onB.endAsync()
    const started = Date.now()
    const onC = await mqttOn('c', options)
    const connectMs = Date.now() - started
    const got = collect(onC)
    const publisher = await mqttOn('a', { protocolVersion: 5 })
    await publisher.publishAsync('chg/old', 'gone', { qos: 1 })
    await publisher.publishAsync('chg/new', 'here', { qos: 1 })
    await expect.poll(() => got('chg/new'), { timeout: 10_000 }).toEqual(['here'])
    expect(got('chg/old')).toEqual([]) // published before the sentinel: it would have arrived first
    expect(connectMs).toBeLessThan(5000)
  }, 30_000)

  it('publishes a will once, cluster-wide, and not at all when the session resumes on another node in time', async () => {
    const watchers = await Promise.all(NODES.map((n) => mqttOn(n, { protocolVersion: 5 })))
    const seen = watchers.map(collect)
    for (const w of watchers) await w.subscribeAsync({ 'will/#': { qos: 1 } })

    const dying = await mqttOn('a', {
      clientId: 'dying',
      protocolVersion: 5,
      will: { topic: 'will/dying', payload: Buffer.from('gone'), qos: 1, retain: false },
    })
    dying.stream.destroy() // no DISCONNECT: the will goes out
    for (const [i] of watchers.entries())
      await expect.poll(() => seen[i]!('will/dying'), { timeout: 10_000 }).toEqual(['gone'])

    // a delayed will, its session taken over on another node before the delay: never sent
    const delayed = await mqttOn('b', {
      clientId: 'delayed',
      protocolVersion: 5,
      clean: false,
      properties: { sessionExpiryInterval: 300 },
      will: {
        topic: 'will/delayed',
        payload: Buffer.from('late'),
        qos: 1,
        retain: false,
        properties: { willDelayInterval: 1 },
      },
    })
    const delayedClosed = closedBy(delayed)
    await mqttOn('c', {
      clientId: 'delayed',
      protocolVersion: 5,
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    })
    expect(await delayedClosed).toBe(0x8e)
    // node b's delay timer fires and finds the will cancelled (its log says so); a sentinel published
    // after that proves nothing came: it would have arrived first
    await expect
      .poll(() => fixture.cluster.node('b').process.output(), { timeout: 10_000 })
      .toMatch(/will of delayed not published/)
    await watchers[0]!.publishAsync('will/delayed', 'sentinel', { qos: 1 })
    for (const [i] of watchers.entries()) {
      await expect.poll(() => seen[i]!('will/delayed').at(-1), { timeout: 10_000 }).toBe('sentinel')
      expect(seen[i]!('will/delayed')).toEqual(['sentinel'])
      expect(seen[i]!('will/dying')).toEqual(['gone'])
    }
  }, 60_000)

  it('delivers each message of a shared subscription to one member across all nodes', async () => {
    // four members on three nodes (two on b), each also a plain subscriber of the end sentinel
    const members = await Promise.all(['a', 'b', 'b', 'c'].map((n) => mqttOn(n, { protocolVersion: 5 })))
    const seen = members.map(collect)
    for (const m of members) await m.subscribeAsync({ '$share/g/sh/#': { qos: 1 }, 'end/sh': { qos: 1 } })
    const publisher = await mqttOn('a', { protocolVersion: 5 })
    const N = 30
    const sent: string[] = []
    for (let i = 0; i < N; i++) {
      for (const qos of [0, 1, 2] as const) {
        sent.push(`q${qos}-${i}`)
        await publisher.publishAsync(`sh/q${qos}`, `q${qos}-${i}`, { qos })
      }
    }
    await publisher.publishAsync('end/sh', 'end', { qos: 1 })
    // each node delivers the sentinel after every message published before it
    for (const [i] of members.entries())
      await expect.poll(() => seen[i]!('end/sh'), { timeout: 15_000 }).toEqual(['end'])
    const got = (i: number) => ['sh/q0', 'sh/q1', 'sh/q2'].flatMap((t) => seen[i]!(t))
    await expect.poll(() => members.flatMap((_, i) => got(i)).length, { timeout: 10_000 }).toBe(3 * N)
    const all = members.flatMap((_, i) => got(i))
    expect([...all].sort()).toEqual([...sent].sort()) // every message once, none twice
    // spread over the nodes, not all taken by one
    const perNode = [got(0).length, got(1).length + got(2).length, got(3).length]
    expect(perNode.filter((n) => n > 0).length).toBe(3)
  }, 60_000)
})
