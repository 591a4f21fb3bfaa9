import { describe, expect, it } from 'vitest'
import type { ChangeEvent, WriteListener } from '../src/index.js'
import { useStores } from './helpers.js'

/** A WriteListener that records what it was told, and a promise of it. */
function listen(): WriteListener & { told: Promise<[unknown, ChangeEvent | undefined]>; calls: number } {
  let resolve!: (v: [unknown, ChangeEvent | undefined]) => void
  const told = new Promise<[unknown, ChangeEvent | undefined]>((r) => {
    resolve = r
  })
  const listener = {
    told,
    calls: 0,
    writeSettled(error: unknown, change: ChangeEvent | undefined) {
      listener.calls++
      resolve([error, change])
    },
  }
  return listener
}

describe('table.submit: a write told to a listener instead of a promise', () => {
  const open = useStores()

  it('tells each kind once, after the commit, with the event the promise would resolve with', async () => {
    const { store } = await open()
    const t = store.table<{ a: number }>('T')
    const heard: ChangeEvent[] = []
    store.onChange((e) => heard.push(e))
    const put = listen()
    const message = listen()
    const del = listen()
    const absent = listen()
    t.submit('put', 'x', { a: 1 }, { meta: { by: 'test' } }, put)
    t.submit('message', 'x', { a: 2 }, undefined, message)
    t.submit('delete', 'x', undefined, undefined, del)
    t.submit('delete', 'nothing', undefined, undefined, absent)
    // nothing is told before the commit
    expect(put.calls + message.calls + del.calls + absent.calls).toBe(0)
    const [putError, putChange] = await put.told
    expect(putError).toBeUndefined()
    expect(putChange).toMatchObject({ type: 'put', id: 'x', value: { a: 1 }, meta: { by: 'test' } })
    // the feed heard the batch before its writers were told
    expect(heard.map((e) => e.type)).toEqual(['put', 'message', 'delete'])
    expect((await message.told)[1]).toMatchObject({ type: 'message', value: { a: 2 } })
    expect((await del.told)[1]).toMatchObject({ type: 'delete', id: 'x' })
    expect(await absent.told).toEqual([undefined, undefined])
    expect(t.get('x')).toBeUndefined()
    expect([...store.log.readSince({})].map((e) => e.type)).toEqual(['put', 'message', 'delete'])
    expect(put.calls + message.calls + del.calls + absent.calls).toBe(4)
  })

  it('tells a refused write its error, after the caller returned, and writes nothing', async () => {
    const { store } = await open()
    const t = store.table('T')
    const bad = listen()
    t.submit('put', '', { a: 1 }, undefined, bad)
    expect(bad.calls).toBe(0)
    const [error] = await bad.told
    expect(error).toMatchObject({ code: 'STORAGE_INVALID_KEY' })
    const conflict = listen()
    t.submit('put', 'y', { a: 1 }, { ifVersion: 42 }, conflict)
    expect((await conflict.told)[0]).toMatchObject({ code: 'STORAGE_CONFLICT' })
    expect(t.get('y')).toBeUndefined()
  })

  it('reports a listener that throws to onError; the other writes of its batch are still told', async () => {
    const errors: unknown[] = []
    const { store } = await open({ onError: (e) => errors.push(e) })
    const t = store.table('T')
    const thrower: WriteListener = {
      writeSettled() {
        throw new Error('listener exploded')
      },
    }
    const after = listen()
    t.submit('put', 'a', 1, undefined, thrower)
    t.submit('put', 'b', 2, undefined, after)
    expect((await after.told)[0]).toBeUndefined()
    expect(errors).toEqual([expect.objectContaining({ message: 'listener exploded' })])
    expect(t.get('a')).toBe(1)
  })

  it('tells a write submitted after close that the store is closed', async () => {
    const { store } = await open()
    const t = store.table('T')
    await store.close()
    const late = listen()
    t.submit('put', 'z', 1, undefined, late)
    expect((await late.told)[0]).toMatchObject({ code: 'STORAGE_CLOSED' })
  })
})
