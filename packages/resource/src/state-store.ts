import { isValidKey, type Key, type Table } from '@proj/storage'
import type { StateStore } from './types.js'

/** Storage-table prefix for transport-owned state; such tables are unlogged and never routable. */
export const STATE_PREFIX = '__state.'

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
