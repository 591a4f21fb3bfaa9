import {
  type ChangeEvent,
  isValidKey,
  type Key,
  type Store,
  type Table,
  type WriteTransaction,
} from '@proj/storage'
import { ResourceError } from './errors.js'
import type { StateStore, StateWrite } from './types.js'

/** Storage-table prefix for transport-owned state; such tables are unlogged and never routable. */
const STATE_PREFIX = '__state.'

/** A transport-owned key/value store backed by an unlogged storage table. */
export class TableStateStore<V> implements StateStore<V> {
  readonly name: string
  /** @internal the storage table, for atomic writes */
  readonly table: Table<V>

  constructor(name: string, table: Table<V>) {
    this.name = name
    this.table = table
  }

  get(key: Key): V | undefined {
    return this.table.get(key)
  }

  version(key: Key): number | undefined {
    return this.table.getEntry(key)?.version
  }

  async put(key: Key, value: V): Promise<void> {
    await this.table.put(key, value)
  }

  async delete(key: Key): Promise<void> {
    await this.table.delete(key)
  }

  accepts(key: Key): boolean {
    return isValidKey(key)
  }

  *entries(options?: { prefix?: string }): Iterable<{ key: Key; value: V }> {
    const range = options?.prefix !== undefined ? { prefix: options.prefix } : undefined
    for (const entry of this.table.entries(range)) yield { key: entry.id, value: entry.value }
  }
}

/** The named state stores of a runtime, and commits that write some of them with a record or message. */
export class StateStores {
  readonly #store: Store
  readonly #states = new Map<string, TableStateStore<unknown>>()

  constructor(store: Store) {
    this.#store = store
  }

  get(name: string): TableStateStore<unknown> {
    let state = this.#states.get(name)
    if (!state) {
      if (typeof name !== 'string' || name === '')
        throw new ResourceError('INVALID', 'a state store needs a name')
      state = new TableStateStore(name, this.#store.table(STATE_PREFIX + name, { log: false }))
      this.#states.set(name, state)
    }
    return state
  }

  /** Commits `write` and the state writes in one transaction. */
  commit(
    write: (txn: WriteTransaction) => void,
    atomic: readonly StateWrite[] | undefined,
  ): Promise<ChangeEvent[]> {
    if (atomic === undefined || atomic.length === 0) return this.#store.transaction(write)
    const tables = atomic.map((w) => this.get(w.store).table)
    return this.#store.transaction((txn) => {
      write(txn)
      for (let i = 0; i < atomic.length; i++) {
        const w = atomic[i]!
        const options = w.ifVersion !== undefined ? { ifVersion: w.ifVersion } : undefined
        if (w.value === undefined) txn.delete(tables[i]!, w.key, options)
        else txn.put(tables[i]!, w.key, w.value, options)
      }
    })
  }
}
