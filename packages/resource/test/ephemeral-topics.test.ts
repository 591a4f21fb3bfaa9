import { openStore, type Store } from '@proj/storage'
import { tempDir } from '@proj/test-utils'
import { describe, expect, it } from 'vitest'
import { TOPICS_TABLE } from '../src/index.js'
import { admin, bytes, collector, runtimeFixture, text } from './helpers.js'

/** A store the test reads directly (the runtime shows only `runtime.storage`), closed after the runtime. */
async function storeFixture(): Promise<{ store: Store; [Symbol.asyncDispose](): Promise<void> }> {
  const dir = await tempDir('proj-resource-')
  const store = await openStore({ path: dir.path, noSync: true })
  return {
    store,
    async [Symbol.asyncDispose]() {
      await store.close()
      await dir.remove()
    },
  }
}

const retained = (payload: string, qos: 0 | 1 = 0) => ({ payload: bytes(payload), retain: true, qos })

describe('$SYS retained messages (ephemeral)', () => {
  it('keeps them in memory: retained for new subscribers and delivered live, never in the change log', async () => {
    await using s = await storeFixture()
    await using f = await runtimeFixture({ store: s.store })
    const { runtime } = f
    const live = collector()
    const sub = await runtime.subscribe('$SYS/#', live.listener, { qos: 1 }, admin)
    await sub.ready
    const all = collector()
    const hash = await runtime.subscribe('#', all.listener, { qos: 0 }, admin)
    await hash.ready
    const cursor = runtime.storage.log.lastCursor

    for (let i = 1; i <= 3; i++)
      await runtime.publish('$SYS/broker/uptime', retained(`${i} seconds`), {
        ...admin,
        transport: 'internal',
      })
    await runtime.publish('$SYS/broker/version', retained('proj-server version 1.0.0', 1), admin)

    // a refresh reaches subscribers at once, as a live put (retain 0 unless retain-as-published)
    expect(live.events.map((e) => [e.type, e.topic, e.retained, e.cursor])).toEqual([
      ['put', '$SYS/broker/uptime', false, 0],
      ['put', '$SYS/broker/uptime', false, 0],
      ['put', '$SYS/broker/uptime', false, 0],
      ['put', '$SYS/broker/version', false, 0],
    ])
    expect(text(live.events[2]!.value as Uint8Array)).toBe('3 seconds')
    // nothing was stored or logged, and `#` does not match `$SYS` [MQTT-4.7.2-1]
    expect(runtime.storage.log.lastCursor).toBe(cursor)
    expect(s.store.table(TOPICS_TABLE).get('$SYS/broker/uptime')).toBeUndefined()
    expect(all.events).toEqual([])

    // a new subscriber gets the current values first, as retained messages
    const later = collector()
    const second = await runtime.subscribe('$SYS/broker/+', later.listener, { qos: 0 }, admin)
    await second.ready
    expect(later.events.map((e) => [e.topic, e.retained, text(e.value as Uint8Array)])).toEqual([
      ['$SYS/broker/uptime', true, '3 seconds'],
      ['$SYS/broker/version', true, 'proj-server version 1.0.0'],
    ])
    expect(text((await runtime.get('$SYS/broker/uptime', admin))!.value as Uint8Array)).toBe('3 seconds')

    // an empty retained payload clears one, as on any topic
    await runtime.publish('$SYS/broker/version', retained(''), admin)
    expect(live.events.at(-1)).toMatchObject({ type: 'delete', topic: '$SYS/broker/version', cursor: 0 })
    expect(await runtime.get('$SYS/broker/version', admin)).toBeUndefined()
    expect(runtime.storage.log.lastCursor).toBe(cursor)
    sub.close()
    second.close()
    hash.close()
  })

  it('forgets them on restart, and does not serve $SYS records an older version stored', async () => {
    await using s = await storeFixture()
    await using f = await runtimeFixture({ store: s.store })
    await f.runtime.publish('$SYS/broker/uptime', retained('5 seconds'), admin)
    // what an older version left in the topics table (a durable retained message)
    await s.store.table(TOPICS_TABLE).put('$SYS/broker/clients/total', { payload: bytes('7') })
    expect(await f.runtime.get('$SYS/broker/clients/total', admin)).toBeUndefined()
    const runtime = await f.reopen()
    expect(await runtime.get('$SYS/broker/uptime', admin)).toBeUndefined()
    const { events, listener } = collector()
    const sub = await runtime.subscribe('$SYS/#', listener, { qos: 0 }, admin)
    await sub.ready
    await runtime.publish('$SYS/broker/uptime', retained('1 seconds'), admin)
    expect(events.map((e) => [e.topic, e.retained])).toEqual([['$SYS/broker/uptime', false]])
    // other `$` topics stay durable retained messages
    await runtime.publish('$app/x', retained('kept', 1), admin)
    expect(s.store.table(TOPICS_TABLE).get('$app/x')).toBeDefined()
    sub.close()
  })
})
