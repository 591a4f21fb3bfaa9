import { tempDir } from '@proj/test-utils'
import { afterEach } from 'vitest'
import { type OpenStoreOptions, openStore, type Store } from '../src/index.js'

type Opened = { store: Store; path: string; reopen(options?: Partial<OpenStoreOptions>): Promise<Store> }

/** Opens a store in a fresh temp dir; every store and dir is closed and removed after the test. */
export function useStores() {
  const cleanups: (() => Promise<void>)[] = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })
  return async function open(options: Partial<OpenStoreOptions> = {}): Promise<Opened> {
    const dir = await tempDir('proj-storage-')
    cleanups.push(() => dir.remove())
    const track = async (o: Partial<OpenStoreOptions>) => {
      const s = await openStore({ compactionIntervalMs: 0, ...o, path: dir.path })
      cleanups.push(() => s.close())
      return s
    }
    const store = await track(options)
    return {
      store,
      path: dir.path,
      reopen: async (o = {}) => {
        await store.close()
        return track({ ...options, ...o })
      },
    }
  }
}
