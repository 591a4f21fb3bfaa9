import { waitFor } from '@proj/test-utils'
import type { MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  pubackCode,
  SECRET,
  type SecurityServer,
  startSecurityServer,
  subackCodes,
  USERS,
  type Who,
} from './helpers/security-server.js'

/**
 * Every door (REST, records WebSocket, SSE, MQTT over TCP and over WebSocket) as a reader, a writer and
 * anonymous, against what issue #12 fixed: nobody but the admin reaches Secret, whatever the spelling of
 * the path or topic; readers and anonymous write nothing; `%u`/`%c` rules stay in their namespace; wills
 * and retained messages obey the same rules; a refused write answers the same whether the record exists
 * or not; stream doors check the page's origin. Every refusal is checked against the stored data.
 */
let s: SecurityServer
let before: Awaited<ReturnType<SecurityServer['snapshot']>>

beforeAll(async () => {
  s = await startSecurityServer()
  before = await s.snapshot()
  expect(before['/Secret/1']!.text).toContain(SECRET)
})

afterAll(async () => {
  await s?.close()
})

/** Spellings of the Secret table and its record that must all be refused. */
const SECRET_PATHS = [
  '/Secret/1',
  '/secret/1',
  '/SECRET/1',
  '/Secret/',
  '/Secret/?value=s3cr3t-value',
  '/Secret/1.value',
  '/Secret/?select(value)',
  '/%53ecret/1',
  '/Secret%2F1',
  '/Dog/..%2FSecret/1',
  '/Dog/%2e%2e/Secret/1',
  '//Secret/1',
  '/./Secret/1',
]

describe.each(USERS)('REST as %s', (who) => {
  it('reads nothing of Secret through any spelling of its path', async () => {
    for (const path of SECRET_PATHS) {
      const res = await s.rest(who, 'GET', path)
      expect(res.status, `${who} GET ${path}`).toBeGreaterThanOrEqual(400)
      expect(res.text, `${who} GET ${path}`).not.toContain(SECRET)
    }
  })

  it('writes nothing to Secret, and the refusal is the same for an existing and an absent record', async () => {
    for (const method of ['PUT', 'PATCH', 'DELETE'] as const) {
      const body = method === 'DELETE' ? undefined : { value: 'pwned' }
      const existing = await s.rest(who, method, '/Secret/1', body)
      const absent = await s.rest(who, method, '/Secret/2', body)
      expect(existing.status, `${who} ${method}`).toBeGreaterThanOrEqual(400)
      expect(absent.status).toBe(existing.status)
      expect(absent.text.replace('Secret/2', 'Secret/1')).toBe(existing.text)
    }
    for (const path of ['/secret/1', '/SECRET/2', '/%53ecret/1']) {
      expect((await s.rest(who, 'PUT', path, { value: 'pwned' })).status, path).toBeGreaterThanOrEqual(400)
    }
    expect((await s.rest(who, 'POST', '/Secret/', { value: 'pwned' })).status).toBeGreaterThanOrEqual(400)
    expect(await s.snapshot()).toEqual(before)
  })

  it.skipIf(who === 'writer')('writes nothing to Dog', async () => {
    expect((await s.rest(who, 'PUT', '/Dog/1', { name: 'pwned' })).status).toBeGreaterThanOrEqual(400)
    expect((await s.rest(who, 'PATCH', '/dog/1', { name: 'pwned' })).status).toBeGreaterThanOrEqual(400)
    expect((await s.rest(who, 'DELETE', '/Dog/1')).status).toBeGreaterThanOrEqual(400)
    expect((await s.rest(who, 'PUT', '/Dog/2', { name: 'pwned' })).status).toBeGreaterThanOrEqual(400)
    expect((await s.rest(who, 'GET', '/Dog/1')).status).toBe(200) // reading is allowed
    expect(await s.snapshot()).toEqual(before)
  })
})

describe('REST: the writer is allowed what its role allows (the checks above can fail)', () => {
  it('writes Dog, and names like __proto__ and constructor stay plain own keys', async () => {
    const body = '{"name":"Max","__proto__":{"admin":true},"constructor":"x"}'
    expect((await s.rest('writer', 'PUT', '/Dog/w', body)).status).toBeLessThan(300)
    const got = JSON.parse((await s.rest('writer', 'GET', '/Dog/w')).text)
    expect(Object.hasOwn(got, '__proto__')).toBe(true)
    expect(got.admin).toBeUndefined()
    expect(got.constructor).toBe('x')
    expect((await s.rest('writer', 'PUT', '/Dog/w2', { name: 'Max' })).status).toBeLessThan(300)
    expect((await s.rest('writer', 'GET', '/Dog/?constructor=x')).status).toBe(200)
    expect(await s.snapshot()).toEqual(before)
  })
})

describe.each(USERS)('WebSocket and SSE as %s', (who) => {
  it('opens no stream on Secret, and none from a foreign page', async () => {
    const auth = s.auth(who)
    for (const path of ['/Secret/1', '/secret/1', '/Secret/', '/%53ecret/1']) {
      expect(await s.upgrade(path, auth), `${who} ws ${path}`).toBeGreaterThanOrEqual(400)
      expect(await s.sse(path, auth), `${who} sse ${path}`).toBeGreaterThanOrEqual(400)
    }
    const evil = { ...auth, origin: 'https://evil.example' }
    expect(await s.upgrade('/Dog/1', evil)).toBe(403)
    expect(await s.upgrade('/mqtt', evil, 'mqtt')).toBe(403)
    if (who !== 'anonymous') expect(await s.sse('/Dog/1', evil)).toBe(403)
    // the same requests from the server's own page, or from a non-browser client, are served
    const own = { ...auth, origin: s.http }
    expect(await s.upgrade('/Dog/1', own)).toBe(101)
    expect(await s.upgrade('/mqtt', own, 'mqtt')).toBe(101)
    expect(await s.sse('/Dog/1', own)).toBe(200)
    expect(await s.sse('/Dog/1', auth)).toBe(200)
    expect(await s.snapshot()).toEqual(before)
  })
})

describe.each(['tcp', 'ws'] as const)('MQTT over %s', (door) => {
  const clients: MqttClient[] = []
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
  })

  describe.each(USERS)('as %s', (who) => {
    let client: MqttClient
    const received: string[] = []
    beforeAll(async () => {
      ;({ client } = await s.connect(who, door, { clientId: `${who}-${door}` }))
      clients.push(client)
      client.on('message', (topic) => received.push(topic))
    })

    it('subscribes to nothing of Secret: exact, case variants, wildcards and shared subscriptions', async () => {
      const refused = ['Secret/1', 'secret/1', 'SECRET/#', 'Secret/#', 'Secret/+', '$share/g/Secret/#']
      const codes = await subackCodes(client, refused)
      expect(codes, who).toEqual(refused.map(() => 0x87))
      // wildcards that also match Secret are granted for what the user may read, and deliver nothing of Secret
      expect(await subackCodes(client, ['#', '+/1', '$share/g2/#'])).toEqual([1, 1, 1])
      const admin = (await s.connect('admin', 'tcp')).client
      clients.push(admin)
      await admin.publishAsync('Secret/1', 'a message nobody else may see', { qos: 1 })
      await admin.publishAsync('public/sentinel', `${who}-${door}`, { qos: 1 })
      await waitFor(() => received.includes('public/sentinel'), { message: 'the sentinel' })
      expect(received.filter((t) => t.toLowerCase().startsWith('secret'))).toEqual([])
      expect(received).toContain('public/notice') // the retained message it may read arrived
      await admin.endAsync()
    })

    it('writes nothing it may not: Secret (same answer for an existing and an absent record), Dog, other namespaces', async () => {
      const one = await pubackCode(client, 'Secret/1', '{"value":"pwned"}', { retain: true })
      const two = await pubackCode(client, 'Secret/2', '{"value":"pwned"}', { retain: true })
      expect(one.code).toBe(0x87)
      expect(two.code).toBe(one.code)
      expect(two.reason?.replace('Secret/2', 'Secret/1')).toBe(one.reason)
      for (const [topic, retain] of [
        ['secret/1', true],
        ['Secret/1', false],
        ['SECRET/1', false],
        ['constructor/x', true],
        ['clients/x/y', true],
        ['devices/%u/x', true],
        [who === 'writer' ? 'devices/reader/x' : 'devices/writer/x', true],
      ] as const) {
        expect(
          (await pubackCode(client, topic, '{"value":"pwned"}', { retain })).code,
          `${who} ${topic}`,
        ).toBe(0x87)
      }
      if (who !== 'writer') {
        expect((await pubackCode(client, 'Dog/1', '{"name":"pwned"}', { retain: true })).code).toBe(0x87)
        expect((await pubackCode(client, 'dog/2', '{"name":"pwned"}', { retain: true })).code).toBe(0x87)
        expect((await pubackCode(client, 'public/notice', 'pwned', { retain: true })).code).toBe(0x87)
      }
      expect(await s.snapshot()).toEqual(before)
    })

    it.skipIf(who === 'anonymous')(
      'has its own %u namespace and receives nothing from another’s',
      async () => {
        expect((await pubackCode(client, `devices/${who}/own`, 'mine')).code).toBe(0)
        // a wider filter is granted and checked per message, like Mosquitto's ACLs
        expect(await subackCodes(client, ['devices/+/x'])).toEqual([1])
        const admin = (await s.connect('admin', 'tcp')).client
        clients.push(admin)
        const other = who === 'reader' ? 'writer' : 'reader'
        received.length = 0
        await admin.publishAsync(`devices/${other}/x`, 'not for you', { qos: 1 })
        await admin.publishAsync(`devices/${who}/x`, 'yours', { qos: 1 })
        await waitFor(() => received.includes(`devices/${who}/x`), { message: 'its own message' })
        expect(received).not.toContain(`devices/${other}/x`)
        await admin.endAsync()
      },
    )
  })

  it('a %c rule covers the client’s own id, never one holding a separator or %', async () => {
    const own = (await s.connect('reader', door, { clientId: `c-${door}` })).client
    clients.push(own)
    expect((await pubackCode(own, `clients/c-${door}/t`, 'x')).code).toBe(0)
    for (const clientId of [`c/${door}`, `%u-${door}`]) {
      const odd = (await s.connect('reader', door, { clientId })).client
      clients.push(odd)
      expect((await pubackCode(odd, `clients/${clientId}/t`, 'x')).code, clientId).toBe(0x87)
      expect((await pubackCode(odd, 'clients/x/y', 'x', { retain: true })).code, clientId).toBe(0x87)
    }
    expect(await s.snapshot()).toEqual(before)
  })

  it.each(USERS)('drops the will of %s on a topic it may not publish to', async (who: Who) => {
    const clientId = `will-${who}-${door}`
    const { client } = await s.connect(who, door, {
      clientId,
      will: { topic: 'Secret/1', payload: Buffer.from('{"value":"pwned"}'), qos: 1, retain: true },
    })
    // cut off without DISCONNECT: the will is due at once
    ;(client as unknown as { stream: { destroy(): void } }).stream.destroy()
    await waitFor(() => s.server.output().includes(`will of ${clientId} on Secret/1 refused`), {
      message: 'the will refusal in the log',
    })
    expect(await s.snapshot()).toEqual(before)
  })
})
