import { describe, expect, it } from 'vitest'
import { useStores } from './helpers.js'

type Internals = { logDb: { putSync: (...args: unknown[]) => unknown } }

describe('store write failures', () => {
  const open = useStores()

  it('commits nothing of a batch when writing it fails midway (record without its log entry)', async () => {
    const { store, reopen } = await open()
    const dogs = store.table('Dog')
    await dogs.put('a', 1)
    const logDb = (store as unknown as Internals).logDb
    logDb.putSync = () => {
      throw new Error('disk full')
    }
    await expect(dogs.put('b', 2)).rejects.toThrow('disk full')
    delete (logDb as Partial<Internals['logDb']>).putSync
    expect(dogs.get('b')).toBeUndefined()
    const reopened = await reopen()
    expect(reopened.table('Dog').get('b')).toBeUndefined()
    expect([...reopened.log.readSince()].map((e) => e.id)).toEqual(['a'])
  })

  it('commits no write of a transaction when its last log append fails', async () => {
    const { store } = await open()
    const dogs = store.table('Dog')
    const logDb = (store as unknown as Internals).logDb
    const putSync = logDb.putSync
    let calls = 0
    logDb.putSync = function (this: unknown, ...args: unknown[]) {
      if (++calls === 2) throw new Error('disk full')
      return putSync.apply(this, args)
    }
    const written = store.transaction((txn) => {
      txn.put(dogs, 'a', 1)
      txn.put(dogs, 'b', 2)
    })
    await expect(written).rejects.toThrow('disk full')
    delete (logDb as Partial<Internals['logDb']>).putSync
    expect(dogs.get('a')).toBeUndefined()
    expect(dogs.get('b')).toBeUndefined()
    expect([...store.log.readSince()]).toEqual([])
  })
})
