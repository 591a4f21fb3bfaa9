import { describe, expect, it } from 'vitest'
import type { RequestContext, User } from '../src/index.js'
import { admin, bytes, code, collector, runtimeFixture } from './helpers.js'

const reader: User = { username: 'rita', role: 'reader', superUser: false }
const as = (user: User | null, clientId?: string) => ({ user, ...(clientId ? { clientId } : {}) })

describe('permissions', () => {
  it('allows what a role grants per table and forbids the rest', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    await runtime.put('Dog/rex', { name: 'Rex' }, admin)
    const ctx = as(reader)
    expect(await code(runtime.get('Dog/rex', ctx))).toBe('OK')
    expect(await code(runtime.list('Dog', {}, ctx))).toBe('OK')
    expect(await code(runtime.put('Dog/rex', { name: 'Max' }, ctx))).toBe('FORBIDDEN')
    expect(await code(runtime.delete('Dog/rex', ctx))).toBe('FORBIDDEN')
    expect(
      await code(runtime.publish('Dog/rex', { payload: bytes('{"name":"Max"}'), retain: true, qos: 1 }, ctx)),
    ).toBe('FORBIDDEN')
    expect(await code(runtime.publish('Dog/rex', { payload: bytes('{}'), retain: false, qos: 0 }, ctx))).toBe(
      'FORBIDDEN',
    )
    // insert without update on breeds: a new record yes, changing it no
    expect(await code(runtime.put('api/breeds/1', { name: 'Pug' }, ctx))).toBe('OK')
    expect(await code(runtime.put('api/breeds/1', { name: 'Pom' }, ctx))).toBe('FORBIDDEN')
    expect(await code(runtime.get('Anything/x', ctx))).toBe('FORBIDDEN')
    expect(await code(runtime.subscribe('Anything/#', () => {}, {}, ctx))).toBe('FORBIDDEN')
    expect((await runtime.get('Dog/rex', admin))?.value).toMatchObject({ name: 'Rex' })
  })

  it('rejects calls without a user as UNAUTHORIZED unless anonymous access is on', async () => {
    await using f = await runtimeFixture()
    expect(f.runtime.anonymous()).toBeNull()
    expect(await code(f.runtime.get('Dog/rex', as(null)))).toBe('UNAUTHORIZED')
    expect(
      await code(f.runtime.publish('a/b', { payload: bytes('1'), retain: false, qos: 0 }, as(null))),
    ).toBe('UNAUTHORIZED')
    expect(await code(f.runtime.subscribe('#', () => {}, {}, as(null)))).toBe('UNAUTHORIZED')
    const runtime = await f.reopen({ allowAnonymous: true })
    expect(runtime.anonymous()).toEqual({ username: 'anonymous', role: 'anonymous', superUser: false })
    expect(await code(runtime.put('Dog/rex', { name: 'Rex' }, as(null)))).toBe('OK')
    const limited = await f.reopen({ allowAnonymous: true, anonymousRole: 'reader' })
    expect(await code(limited.get('Dog/rex', as(null)))).toBe('OK')
    // an anonymous caller that is denied is told to authenticate
    expect(await code(limited.put('Dog/rex', { name: 'Max' }, as(null)))).toBe('UNAUTHORIZED')
  })

  it('applies topic rules to unclaimed topics: allow, deny wins, %u, per-event filtering', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const ctx = as(reader, 'client-1')
    expect(
      await code(runtime.publish('public/news', { payload: bytes('1'), retain: false, qos: 0 }, ctx)),
    ).toBe('OK')
    expect(
      await code(runtime.publish('private/x', { payload: bytes('1'), retain: false, qos: 0 }, ctx)),
    ).toBe('FORBIDDEN')
    expect(
      await code(runtime.publish('users/rita/inbox', { payload: bytes('1'), retain: false, qos: 0 }, ctx)),
    ).toBe('OK')
    expect(
      await code(runtime.publish('users/bob/inbox', { payload: bytes('1'), retain: false, qos: 0 }, ctx)),
    ).toBe('FORBIDDEN')
    expect(await code(runtime.subscribe('public/secret/#', () => {}, {}, ctx))).toBe('FORBIDDEN')
    expect(await code(runtime.subscribe('private/#', () => {}, {}, ctx))).toBe('FORBIDDEN')
    expect(await code(runtime.get('private/x', ctx))).toBe('FORBIDDEN')

    await runtime.publish(
      'public/secret/code',
      { payload: bytes('"retained secret"'), retain: true, qos: 1 },
      admin,
    )
    await runtime.publish('public/open', { payload: bytes('"retained open"'), retain: true, qos: 1 }, admin)
    const { events, listener } = collector()
    const sub = await runtime.subscribe('public/#', listener, {}, ctx)
    await sub.ready
    await runtime.publish(
      'public/secret/code',
      { payload: bytes('"live secret"'), retain: false, qos: 0 },
      admin,
    )
    await runtime.publish('public/news', { payload: bytes('"live news"'), retain: false, qos: 0 }, admin)
    expect(events.map((e) => e.value)).toEqual(['retained open', 'live news'])
    // '#' as the reader: records of readable tables and allowed topics only
    const all = collector()
    const wide = await runtime.subscribe('#', all.listener, { retained: false }, ctx)
    await runtime.put('Dog/rex', { name: 'Rex' }, admin)
    await runtime.put('Anything/x', 1, admin)
    await runtime.publish('private/x', { payload: bytes('1'), retain: false, qos: 0 }, admin)
    await runtime.publish('public/x', { payload: bytes('2'), retain: false, qos: 0 }, admin)
    expect(all.events.map((e) => e.topic)).toEqual(['Dog/rex', 'public/x'])
    wide.close()
  })

  it('keeps $ topics out of a # rule: a role allowed # may not subscribe to $SYS/# [MQTT-4.7.2-1]', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const plain = as({ username: 'uma', role: 'user', superUser: false }, 'c1')
    await runtime.publish('$SYS/broker/uptime', { payload: bytes('5 seconds'), retain: true, qos: 1 }, admin)
    for (const filter of ['$SYS/#', '$SYS/broker/uptime', '$SYS/+/uptime'])
      expect(await code(runtime.subscribe(filter, () => {}, {}, plain)), filter).toBe('FORBIDDEN')
    // `#` and `+/...` are allowed and simply never match $ topics
    const all = collector()
    const sub = await runtime.subscribe('#', all.listener, {}, plain)
    await sub.ready
    await runtime.publish('$SYS/broker/uptime', { payload: bytes('6 seconds'), retain: true, qos: 1 }, admin)
    await runtime.publish('news', { payload: bytes('1'), retain: false, qos: 1 }, admin)
    expect(all.events.map((e) => e.topic)).toEqual(['news'])
    sub.close()
  })

  it('substitutes %u and %c in one pass and never for names that hold / + # % or are missing', async () => {
    await using f = await runtimeFixture({
      roles: [
        {
          name: 'device',
          topics: [
            { filter: 'devices/%u/#', publish: true, subscribe: true },
            { filter: 'clients/%c/#', publish: true, subscribe: true },
          ],
        },
      ],
    })
    const { runtime } = f
    const device = (username: string) => ({ username, role: 'device', superUser: false })
    const publish = (topic: string, ctx: RequestContext) =>
      code(runtime.publish(topic, { payload: bytes('1'), retain: false, qos: 0 }, ctx))
    const subscribe = (filter: string, ctx: RequestContext) =>
      code(runtime.subscribe(filter, () => {}, {}, ctx).then((s) => s.close()))
    // the rules work for ordinary names
    expect(await publish('devices/eve_x/a', as(device('eve_x'), 'c1'))).toBe('OK')
    expect(await publish('clients/c1/a', as(device('eve_x'), 'c1'))).toBe('OK')
    // a user named %c does not get the namespace of its client id (nor of anyone else)
    expect(await publish('devices/victim/a', as(device('%c'), 'victim'))).toBe('FORBIDDEN')
    expect(await subscribe('devices/victim/#', as(device('%c'), 'victim'))).toBe('FORBIDDEN')
    expect(await publish('devices/%c/a', as(device('%c'), 'victim'))).toBe('FORBIDDEN')
    // eve/x and eve_x do not share devices/eve_x/#, and eve/x gets no devices/eve/x/# either
    expect(await publish('devices/eve_x/a', as(device('eve/x'), 'c2'))).toBe('FORBIDDEN')
    expect(await publish('devices/eve/x/a', as(device('eve/x'), 'c2'))).toBe('FORBIDDEN')
    expect(await subscribe('devices/eve_x/#', as(device('eve/x'), 'c2'))).toBe('FORBIDDEN')
    for (const name of ['eve+', 'eve#', 'a%u']) {
      expect(await publish(`devices/${name.replace(/[+#]/g, '_')}/a`, as(device(name), 'c3'))).toBe(
        'FORBIDDEN',
      )
    }
    // client ids with wildcards or separators match no %c rule
    for (const clientId of ['a+b', 'a#', 'a/b', '%u']) {
      expect(await publish('clients/a_b/x', as(device('eve_x'), clientId))).toBe('FORBIDDEN')
      expect(
        await publish(`clients/${clientId}/x`.replace(/[+#]/g, '_'), as(device('eve_x'), clientId)),
      ).toBe('FORBIDDEN')
    }
    // without a client id (HTTP, WebSocket, SSE) a %c rule never matches
    expect(await publish('clients//x', as(device('eve_x')))).toBe('FORBIDDEN')
    expect(await subscribe('clients//#', as(device('eve_x')))).toBe('FORBIDDEN')
    expect(await code(runtime.put('clients//x', 1, as(device('eve_x'))))).toBe('FORBIDDEN')
    expect(await code(runtime.get('clients//x', as(device('eve_x'))))).toBe('FORBIDDEN')
    expect(await code(runtime.get('devices/eve_x/x', as(device('eve_x'))))).toBe('OK')
  })

  it('refuses a write without write access the same way whether the record exists or not', async () => {
    await using f = await runtimeFixture({ roles: [{ name: 'nobody' }] })
    const { runtime } = f
    await runtime.put('Anything/1', { secret: true }, admin)
    await runtime.put('api/breeds/1', { name: 'Pug' }, admin)
    const refusal = async (promise: Promise<unknown>) => {
      try {
        await promise
        return 'OK'
      } catch (error) {
        const e = error as { code: string; message: string }
        return `${e.code}: ${e.message.replace(/\d+$/, 'N')}`
      }
    }
    const retained = (json: string) => ({ payload: bytes(json), retain: true, qos: 1 as const })
    for (const ctx of [as(reader, 'c1'), as({ username: 'nemo', role: 'nobody', superUser: false })]) {
      const put1 = await refusal(runtime.put('Anything/1', { secret: false }, ctx))
      const put2 = await refusal(runtime.put('Anything/2', { secret: false }, ctx))
      expect(put1).toMatch(/^FORBIDDEN: /)
      expect(put2).toBe(put1)
      const pub1 = await refusal(runtime.publish('Anything/1', retained('{"secret":false}'), ctx))
      const pub2 = await refusal(runtime.publish('Anything/2', retained('{"secret":false}'), ctx))
      expect(pub1).toMatch(/^FORBIDDEN: /)
      expect(pub2).toBe(pub1)
    }
    // the id is not even parsed before the permission check (breeds have Int ids)
    const nemo = as({ username: 'nemo', role: 'nobody', superUser: false })
    expect(await code(runtime.put('api/breeds/not-a-number', { name: 'x' }, nemo))).toBe('FORBIDDEN')
    expect(await code(runtime.get('api/breeds/not-a-number', nemo))).toBe('FORBIDDEN')
    expect(await code(runtime.delete('api/breeds/not-a-number', nemo))).toBe('FORBIDDEN')
    expect(await code(runtime.patch('api/breeds/not-a-number', {}, nemo))).toBe('FORBIDDEN')
    expect(
      await code(
        runtime.publish('api/breeds/not-a-number', { payload: bytes('{}'), retain: true, qos: 1 }, nemo),
      ),
    ).toBe('FORBIDDEN')
    // nothing changed
    expect((await runtime.get('Anything/1', admin))?.value).toMatchObject({ secret: true })
    expect(await runtime.get('Anything/2', admin)).toBeUndefined()
    // a role with insert but not update learns existence, necessarily: inserting works, updating does not
    expect(await code(runtime.put('api/breeds/2', { name: 'Pom' }, as(reader)))).toBe('OK')
    expect(await refusal(runtime.put('api/breeds/1', { name: 'Pom' }, as(reader)))).toMatch(/may not update/)
  })

  it('lets a super user do everything', async () => {
    await using f = await runtimeFixture()
    const boss = as({ username: 'boss', role: 'reader', superUser: true })
    expect(await code(f.runtime.put('Anything/x', 1, boss))).toBe('OK')
    expect(
      await code(f.runtime.publish('private/x', { payload: bytes('1'), retain: true, qos: 1 }, boss)),
    ).toBe('OK')
  })
})

describe('runtime.reconfigure', () => {
  it("replaces configured roles and anonymous settings for later calls; applications' roles stay", async () => {
    await using f = await runtimeFixture({ roles: [{ name: 'clerk', tables: {} }] })
    const { runtime } = f
    const clerk = as({ username: 'cleo', role: 'clerk', superUser: false })
    expect(await code(runtime.list('Dog', {}, clerk))).toBe('FORBIDDEN')
    expect(runtime.anonymous()).toBeNull()
    runtime.reconfigure({
      roles: [{ name: 'clerk', tables: { Dog: { read: true } } }],
      allowAnonymous: true,
      anonymousRole: 'clerk',
    })
    expect(await code(runtime.list('Dog', {}, clerk))).toBe('OK')
    expect(await code(runtime.list('Dog', {}, as(null)))).toBe('OK')
    runtime.reconfigure({})
    expect(runtime.anonymous()).toBeNull()
    expect(await code(runtime.list('Dog', {}, clerk))).toBe('FORBIDDEN')
    // the application's own role (config.json) is still there
    expect(await code(runtime.list('Dog', {}, as(reader)))).toBe('OK')
  })
})

describe('runtime.isSuperUser and runtime.roles', () => {
  it('a super-user role makes its users super users even without their own flag', async () => {
    await using f = await runtimeFixture()
    const runtime = await f.reopen({ roles: [{ name: 'ops', superUser: true }, { name: 'reader' }] })
    expect(runtime.isSuperUser({ username: 'a', role: 'ops', superUser: false })).toBe(true)
    expect(runtime.isSuperUser({ username: 'b', role: 'admin', superUser: false })).toBe(true)
    expect(runtime.isSuperUser({ username: 'c', role: 'reader', superUser: true })).toBe(true)
    expect(runtime.isSuperUser(reader)).toBe(false)
    expect(runtime.isSuperUser(null)).toBe(false)
    expect(runtime.roles().map((r) => r.name)).toEqual(['admin', 'user', 'anonymous', 'reader', 'ops'])
  })
})
