import { describe, expect, it } from 'vitest'
import { parseSchema, type ResourceEvent, Table } from '../src/index.js'
import { primaryKeyAttribute } from '../src/table-handle.js'
import { admin, bytes, code, runtimeFixture, text } from './helpers.js'

const tableOf = (source: string) => parseSchema(source, 'schema.graphql').tables[0]!

describe('primary key attribute', () => {
  it('is the @primaryKey / @id attribute, else id unless id cannot hold the record ids', () => {
    expect(primaryKeyAttribute(tableOf('type A @table { key: Int @primaryKey  name: String }'))).toBe('key')
    expect(primaryKeyAttribute(tableOf('type A @table { code: String @id }'))).toBe('code')
    expect(primaryKeyAttribute(tableOf('type A @table'))).toBe('id')
    expect(primaryKeyAttribute(tableOf('type A @table { name: String }'))).toBe('id')
    expect(primaryKeyAttribute(tableOf('type A @table { id: ID  name: String }'))).toBe('id')
    // path ids of a table without @primaryKey are strings: an Int attribute named id cannot hold them
    expect(primaryKeyAttribute(tableOf('type A @table { id: Int  name: String }'))).toBeUndefined()
    // a sealed type rejects attributes it does not declare
    expect(primaryKeyAttribute(tableOf('type A @table @sealed { name: String }'))).toBeUndefined()
    expect(primaryKeyAttribute(tableOf('type A @table @sealed { id: ID name: String }'))).toBe('id')
  })

  it('is set on put, patch and post (coerced to the id type) without changing the caller object', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const value = { name: 'Beagle' }
    await runtime.put('api/breeds/7', value, admin)
    expect(value).toEqual({ name: 'Beagle' })
    expect((await runtime.get('api/breeds/7', admin))?.value).toEqual({ name: 'Beagle', id: 7 })
    // the same id as text is the same record id: stored with the declared type
    await runtime.put('api/breeds/8', { id: '8', name: 'Pug' }, admin)
    expect((await runtime.get('api/breeds/8', admin))?.value).toEqual({ id: 8, name: 'Pug' })
    await runtime.patch('api/breeds/8', { name: 'Pugs' }, admin)
    expect((await runtime.get('api/breeds/8', admin))?.value).toEqual({ id: 8, name: 'Pugs' })
    // a patch cannot remove it
    await runtime.patch('api/breeds/8', { id: undefined }, admin)
    expect((await runtime.get('api/breeds/8', admin))?.value).toEqual({ id: 8, name: 'Pugs' })

    const posted = await runtime.post('api/breeds', { name: 'Pom' }, admin)
    expect(posted.id).toBe(9)
    expect((await runtime.get('api/breeds/9', admin))?.value).toEqual({ name: 'Pom', id: 9 })
    // a posted id is coerced like a path id, so the record is found at its path
    const named = await runtime.post('api/breeds', { id: '20', name: 'Spitz' }, admin)
    expect(named.id).toBe(20)
    expect((await runtime.get('api/breeds/20', admin))?.value).toEqual({ id: 20, name: 'Spitz' })
    const dog = await runtime.post('Dog', { name: 'Bo' }, admin)
    expect((await runtime.get(`Dog/${String(dog.id)}`, admin))?.value).toMatchObject({
      name: 'Bo',
      id: dog.id,
    })

    const list = await runtime.list('api/breeds', {}, admin)
    expect(list.map((r) => r.value)).toEqual([
      { name: 'Beagle', id: 7 },
      { id: 8, name: 'Pugs' },
      { name: 'Pom', id: 9 },
      { id: 20, name: 'Spitz' },
    ])
  })

  it('rejects a value whose primary key names another record, leaving the record unchanged', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    await runtime.put('api/breeds/1', { name: 'Pug' }, admin)
    expect(await code(runtime.put('api/breeds/1', { id: 2, name: 'X' }, admin))).toBe('INVALID')
    expect(await code(runtime.patch('api/breeds/1', { id: 2 }, admin))).toBe('INVALID')
    expect(await code(runtime.put('Anything/a', { id: 'b', x: 1 }, admin))).toBe('INVALID')
    const retained = { payload: bytes('{"id":2,"name":"X"}'), retain: true, qos: 1 as const }
    expect(await code(runtime.publish('api/breeds/1', retained, admin))).toBe('INVALID')
    expect((await runtime.get('api/breeds/1', admin))?.value).toEqual({ name: 'Pug', id: 1 })
    expect(await runtime.get('Anything/a', admin)).toBeUndefined()
  })

  it('uses id on tables without attributes; non-object values are stored as they are', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    await runtime.put('Anything/a', { x: 1 }, admin)
    expect((await runtime.get('Anything/a', admin))?.value).toEqual({ x: 1, id: 'a' })
    await runtime.put('Anything/s', 'just text', admin)
    expect((await runtime.get('Anything/s', admin))?.value).toBe('just text')
    await runtime.put('Anything/l', [1, 2], admin)
    expect((await runtime.get('Anything/l', admin))?.value).toEqual([1, 2])
    await runtime.publish(
      'Anything/raw',
      { payload: new Uint8Array([1, 2, 255]), retain: true, qos: 1 },
      admin,
    )
    expect([...((await runtime.get('Anything/raw', admin))!.value as Uint8Array)]).toEqual([1, 2, 255])
  })

  it('delivers the stored value (with its key) to every subscriber, not the publisher bytes', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const seen: ResourceEvent[] = []
    const sub = await runtime.subscribe('Anything/#', (e) => seen.push(e), { qos: 1 }, admin)
    await sub.ready
    const payload = bytes('{"x":1}')
    const { event } = await runtime.publish('Anything/p', { payload, retain: true, qos: 1 }, admin)
    expect(seen).toEqual([event])
    expect(event!.value).toEqual({ x: 1, id: 'p' })
    expect(JSON.parse(text(runtime.encode(event!, 'application/json')))).toEqual({ x: 1, id: 'p' })
    // retained delivery to a new subscriber
    const late: ResourceEvent[] = []
    const again = await runtime.subscribe('Anything/p', (e) => late.push(e), { qos: 1 }, admin)
    await again.ready
    expect(JSON.parse(text(runtime.encode(late[0]!, 'application/json')))).toEqual({ x: 1, id: 'p' })
    // a non-retained message does not change a record and is delivered as published
    await runtime.publish('Anything/p', { payload, retain: false, qos: 1 }, admin)
    expect(runtime.encode(seen[1]!, 'application/json')).toBe(payload)
    sub.close()
    again.close()
  })

  it('fills the key in on read for records stored without it', async () => {
    await using f = await runtimeFixture()
    const { runtime } = f
    const resource = runtime.resources().get('api/breeds')
    expect(resource).toBeInstanceOf(Table)
    await (resource as Table).table.put(3, { name: 'Old' })
    expect((await runtime.get('api/breeds/3', admin))?.value).toEqual({ name: 'Old', id: 3 })
    expect((await runtime.list('api/breeds', {}, admin)).map((r) => r.value)).toEqual([
      { name: 'Old', id: 3 },
    ])
    await runtime.patch('api/breeds/3', { name: 'Older' }, admin)
    expect((resource as Table).table.get(3)).toEqual({ name: 'Older', id: 3 })
  })
})
