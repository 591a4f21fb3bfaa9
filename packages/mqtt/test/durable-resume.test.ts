/**
 * A durable session resumes exactly after what it received: after a normal reconnect and after a broker
 * restart on the same data, the replay from its cursor holds only changes it has not had (QoS 0, 1, 2;
 * retained current values included), never one it already received or acknowledged.
 */
import { tempDir } from '@proj/test-utils'
import { describe, expect, it } from 'vitest'
import {
  openTestRuntime,
  pairClient,
  RawClient,
  startBroker,
  type TestBroker,
  type TestRuntime,
} from './helpers.js'

type Q = 0 | 1 | 2

/** Receives PUBLISHes, acknowledges them as a well-behaved client, returns their payloads in order. */
function collect(c: RawClient): string[] {
  const got: string[] = []
  const seen = new Set<unknown>()
  const poll = () => {
    for (const p of c.packets) {
      if (seen.has(p)) continue
      seen.add(p)
      if (p.cmd === 'publish') {
        got.push((p.retain ? 'R:' : '') + p.payload.toString())
        if (p.qos === 1) c.send({ cmd: 'puback', messageId: p.messageId! })
        if (p.qos === 2) c.send({ cmd: 'pubrec', messageId: p.messageId! })
      } else if (p.cmd === 'pubrel') c.send({ cmd: 'pubcomp', messageId: p.messageId! })
    }
  }
  const timer = setInterval(poll, 2)
  c.closedPromise.then(() => clearInterval(timer))
  ;(c as unknown as { poll: () => void }).poll = poll
  return got
}

async function waitFor(got: string[], payload: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!got.includes(payload)) {
    if (Date.now() > deadline) throw new Error(`${payload} not received; got ${got.join(',')}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

async function publish(port: number, topic: string, payload: string, qos: 1 | 2, retain = false) {
  const p = await RawClient.tcp(port)
  await p.connect({ clientId: `pub-${Math.random().toString(36).slice(2)}` })
  p.send({ cmd: 'publish', topic, payload, qos, messageId: 7, retain, dup: false })
  if (qos === 1) await p.next('puback')
  else {
    await p.next('pubrec')
    p.send({ cmd: 'pubrel', messageId: 7 })
    await p.next('pubcomp')
  }
  p.send({ cmd: 'disconnect' })
  p.end()
}

describe.each([0, 1, 2] as Q[])('durable session at QoS %s resumes exactly after what it received', (qos) => {
  for (const restart of [false, true]) {
    it(`${restart ? 'after a broker restart' : 'after a reconnect'}: retained value and messages are not replayed`, async () => {
      await using tmp = await tempDir('mqtt-resume-')
      let rt: TestRuntime = await openTestRuntime({}, tmp.path)
      let b: TestBroker = await startBroker({}, rt)
      try {
        await publish(b.port, 'dr/r', 'r1', 1, true)
        let sub = await RawClient.tcp(b.port)
        await sub.connect({ clientId: 'dr-sub', clean: false })
        let got = collect(sub)
        sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'dr/#', qos }] })
        await waitFor(got, 'R:r1')
        await publish(b.port, 'dr/m', 'm1', 1)
        await publish(b.port, 'dr/r', 'r2', 1, true)
        await waitFor(got, 'r2')
        // the acknowledgements are in before the DISCONNECT (a PINGREQ after them is a barrier)
        sub.send({ cmd: 'pingreq' })
        await sub.next('pingresp')
        sub.send({ cmd: 'disconnect' })
        await sub.waitClosed()
        expect(got).toEqual(['R:r1', 'm1', 'r2'])
        if (restart) {
          await b.close()
          await rt.close()
          rt = await openTestRuntime({}, tmp.path)
          b = await startBroker({}, rt)
        }
        await publish(b.port, 'dr/m', 'm2', 1)
        sub = await RawClient.tcp(b.port)
        const ack = await sub.connect({ clientId: 'dr-sub', clean: false })
        expect(ack.sessionPresent).toBe(true)
        got = collect(sub)
        await publish(b.port, 'dr/end', 'end', 1)
        await waitFor(got, 'end')
        expect(got).toEqual(['m2', 'end'])
        sub.end()
      } finally {
        await b.close()
        await rt.close()
      }
    })
  }
})

describe('a durable session subscribed while a retained change commits', () => {
  it('resumes after the snapshot it received: a change the snapshot held (still syncing when read) is not replayed', async () => {
    await using tmp = await tempDir('mqtt-resume-race-')
    const rt = await openTestRuntime({}, tmp.path)
    const b = await startBroker({}, rt)
    const pub = pairClient(b.broker)
    await pub.connect({ clientId: 'race-pub' })
    const send = (topic: string, payload: string, retain: boolean) => {
      pub.send({ cmd: 'publish', topic, payload, qos: 1, messageId: 1, retain, dup: false })
      return pub.next('puback')
    }
    const replayed: string[] = []
    let snapshotOnly = 0
    try {
      // The SUBSCRIBE races the commit of b<i> (at varying offsets): some snapshots are read while its
      // sync is still running, the window where the session's cursor used to stay before it.
      for (let i = 0; i < 200 && (i < 60 || snapshotOnly < 20); i++) {
        const qos = (i % 3) as Q
        await send(`rr/${i}`, `a${i}`, true)
        const sub = pairClient(b.broker)
        await sub.connect({ clientId: `race-${i}`, clean: false })
        const got = collect(sub)
        const acked = send(`rr/${i}`, `b${i}`, true)
        for (let k = 0; k < i % 8; k++) await new Promise((r) => setImmediate(r))
        if (i % 16 >= 8) await new Promise((r) => setTimeout(r, i % 4))
        sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `rr/${i}`, qos }] })
        await acked
        await Promise.any([waitFor(got, `b${i}`), waitFor(got, `R:b${i}`)])
        if (got.includes(`R:b${i}`)) snapshotOnly++
        sub.send({ cmd: 'pingreq' })
        await sub.next('pingresp')
        sub.send({ cmd: 'disconnect' })
        await sub.waitClosed()
        const again = pairClient(b.broker)
        await again.connect({ clientId: `race-${i}`, clean: false })
        const got2 = collect(again)
        await send(`rr/${i}`, `end${i}`, false)
        await waitFor(got2, `end${i}`)
        if (got2.length !== 1) replayed.push(`QoS ${qos}: received ${got.join(',')}, then ${got2.join(',')}`)
        again.end()
      }
      expect(snapshotOnly).toBeGreaterThanOrEqual(20)
      expect(replayed).toEqual([])
    } finally {
      pub.end()
      await b.close()
      await rt.close()
    }
  }, 120_000)
})
