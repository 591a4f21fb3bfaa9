import { describe, expect, it } from 'vitest'
import { admin, bytes, collector, runtimeFixture } from './helpers.js'

const SCHEMA = `
type Proto @table @export {
  id: ID @primaryKey
  constructor: String!
  toString: Int
}
`
const withProto = () =>
  JSON.parse('{"__proto__":{"isAdmin":true},"__proto_":1,"__proto___":2,"deep":[{"__proto__":3}]}')

describe('names that exist on every object', () => {
  it('validates attributes named constructor or toString as own properties', async () => {
    await using f = await runtimeFixture({ schemas: [{ source: SCHEMA }] })
    const { runtime } = f
    await expect(runtime.put('Proto/1', {}, admin)).rejects.toThrow(/constructor is required/)
    await expect(runtime.put('Proto/1', { constructor: 'x', toString: 'y' }, admin)).rejects.toThrow(
      /toString must be an Int/,
    )
    await runtime.put('Proto/1', { constructor: 'x', toString: 2 }, admin)
    expect((await runtime.get('Proto/1', admin))?.value).toEqual({ id: '1', constructor: 'x', toString: 2 })
    expect(await runtime.list('Proto', { where: { constructor: 'x' }, select: ['toString'] }, admin)).toEqual(
      [expect.objectContaining({ value: { toString: 2 } })],
    )
  })

  it('stores, returns, patches and publishes __proto__ keys as ordinary keys through every path', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const live = collector()
    const sub = await runtime.subscribe('Anything/#', live.listener, { retained: false }, admin)
    const start = runtime.storage.log.lastCursor
    await runtime.put('Anything/put', withProto(), admin)
    await runtime.publish(
      'Anything/pub',
      { payload: bytes(JSON.stringify(withProto())), retain: true, qos: 1 },
      admin,
    )
    await runtime.publish(
      'Anything/msg',
      { payload: bytes(JSON.stringify(withProto())), contentType: 'application/json', retain: false, qos: 1 },
      admin,
    )
    const expected = { ...withProto(), id: 'put' }
    const got = (await runtime.get('Anything/put', admin))?.value as Record<string, unknown>
    expect(got).toEqual(expected)
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype)
    expect(Object.hasOwn(got, '__proto__')).toBe(true)
    expect((await runtime.get('Anything/pub', admin))?.value).toEqual({ ...withProto(), id: 'pub' })
    // live events and the change-log replay carry the same values
    expect(live.events.map((e) => e.value)).toEqual([expected, { ...withProto(), id: 'pub' }, withProto()])
    const replay = collector()
    const again = await runtime.subscribe(
      'Anything/#',
      replay.listener,
      { retained: false, after: start },
      admin,
    )
    await again.ready
    expect(replay.events.map((e) => e.value)).toEqual(live.events.map((e) => e.value))
    // retained snapshot
    const snap = collector()
    const third = await runtime.subscribe('Anything/put', snap.listener, {}, admin)
    await third.ready
    expect(snap.events.map((e) => e.value)).toEqual([expected])
    // a patch replaces the __proto__ key only, and a list filters and selects it
    await runtime.patch('Anything/put', JSON.parse('{"__proto__":{"isAdmin":false}}'), admin)
    const patched = (await runtime.get('Anything/put', admin))?.value
    expect(patched).toEqual({ ...expected, ...JSON.parse('{"__proto__":{"isAdmin":false}}') })
    const listed = await runtime.list(
      'Anything',
      { where: { __proto___: '2' }, select: ['__proto__'] },
      admin,
    )
    // key order: pub, then put
    expect(listed.map((r) => r.value)).toEqual([
      JSON.parse('{"__proto__":{"isAdmin":true}}'),
      JSON.parse('{"__proto__":{"isAdmin":false}}'),
    ])
    // and it survives a restart (read back from LMDB, not from memory)
    const reopened = await f.reopen()
    expect((await reopened.get('Anything/pub', admin))?.value).toEqual({ ...withProto(), id: 'pub' })
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined()
    sub.close()
    again.close()
    third.close()
  })
})
