import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Logger, PublishRefusal } from '../src/index.js'
import { openTestRuntime, pairClient, type TestRuntime, useBrokerFixture } from './helpers.js'

const fx = useBrokerFixture()
let rt: TestRuntime
const PASSWORD = Buffer.from('pw')

beforeAll(async () => {
  rt = await openTestRuntime({
    roles: [{ name: 'limited', topics: [{ filter: 'open/#', publish: true, subscribe: true }] }],
  })
  await rt.runtime.users.add('bob', 'pw', { role: 'limited' })
})
afterAll(async () => {
  await rt.close()
})

/** A logger that keeps what was logged at warn. */
function captureLogger(): Logger & { warnings: unknown[][] } {
  const warnings: unknown[][] = []
  return { warnings, debug() {}, info() {}, warn: (...args) => warnings.push(args), error() {} }
}

function publish(c: ReturnType<typeof pairClient>, topic: string, qos: 0 | 1 | 2, messageId?: number) {
  c.send({ cmd: 'publish', topic, payload: 'x', qos, messageId, retain: true, dup: false })
}

describe('a publish the runtime refuses', () => {
  it('3.1.1: acknowledged by default, reported as a publish-refused event and logged at warn, rate-limited per client', async () => {
    const logger = captureLogger()
    const broker = fx.make({ logger }, rt)
    const refusals: PublishRefusal[] = []
    broker.events.on('publish-refused', (r) => refusals.push(r))
    const c = pairClient(broker)
    await c.connect({ clientId: 'refused-v3', username: 'bob', password: PASSWORD })
    for (let id = 1; id <= 5; id++) publish(c, `closed/${id}`, 1, id)
    for (let id = 1; id <= 5; id++) expect((await c.next('puback')).messageId).toBe(id)
    publish(c, 'closed/q2', 2, 6)
    await c.next('pubrec')
    c.send({ cmd: 'pubrel', messageId: 6 })
    await c.next('pubcomp')

    expect(refusals).toHaveLength(6)
    expect(refusals[0]).toMatchObject({
      clientId: 'refused-v3',
      username: 'bob',
      topic: 'closed/1',
      qos: 1,
      reasonCode: 0x87,
    })
    expect(refusals[0]!.reason).toMatch(/closed\/1/)
    // Six refusals within the interval: one warning, naming the client, the topic and why.
    const refusalWarnings = logger.warnings.filter((w) => String(w[1]).includes('refused'))
    expect(refusalWarnings).toHaveLength(1)
    expect(refusalWarnings[0]![0]).toMatchObject({
      clientId: 'refused-v3',
      topic: 'closed/1',
      reasonCode: 0x87,
    })
    expect(String(refusalWarnings[0]![1])).toContain('closed/1')
    // Nothing was written.
    expect(await rt.runtime.get('closed/1', { user: null })).toBeUndefined()
  })

  it("3.1.1 with refusedPublish 'disconnect': earlier acknowledgements go out, then the connection closes", async () => {
    const broker = fx.make({ refusedPublish: 'disconnect' }, rt)
    const refusals: PublishRefusal[] = []
    broker.events.on('publish-refused', (r) => refusals.push(r))
    const c = pairClient(broker)
    await c.connect({ clientId: 'refused-close', username: 'bob', password: PASSWORD })
    publish(c, 'open/1', 1, 1)
    publish(c, 'closed/1', 1, 2)
    publish(c, 'open/2', 1, 3)
    expect((await c.next('puback')).messageId).toBe(1)
    await c.waitClosed()
    expect(c.packets.filter((p) => p.cmd === 'puback')).toEqual([])
    expect(refusals.map((r) => r.topic)).toEqual(['closed/1'])

    // QoS 0 too: the connection closes (there is no acknowledgement to send).
    const q0 = pairClient(broker)
    await q0.connect({ clientId: 'refused-q0', username: 'bob', password: PASSWORD })
    publish(q0, 'closed/2', 0)
    await q0.waitClosed()
  })

  it('v5 keeps its reason codes (PUBACK 0x87) and reports the refusal', async () => {
    const broker = fx.make({ refusedPublish: 'disconnect' }, rt)
    const refusals: PublishRefusal[] = []
    broker.events.on('publish-refused', (r) => refusals.push(r))
    const c = pairClient(broker, 5)
    await c.connect({ clientId: 'refused-v5', username: 'bob', password: PASSWORD })
    publish(c, 'closed/1', 1, 1)
    expect((await c.next('puback')).reasonCode).toBe(0x87)
    c.send({ cmd: 'pingreq' })
    await c.next('pingresp')
    expect(refusals.map((r) => [r.clientId, r.reasonCode])).toEqual([['refused-v5', 0x87]])
  })
})
