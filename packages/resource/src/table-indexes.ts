import { createHash } from 'node:crypto'
import type { Key, Table as StorageTable, Store, WriteTransaction } from '@proj/storage'
import type { TableDefinition } from './schema.js'

/** Unlogged storage table that records which indexes are complete: key `[table, attribute]`. */
export const INDEX_META_TABLE = '__indexes'
/** Prefix of index storage tables: `__index/{table}/{attribute}`, keys `[text, ...id]`. */
export const INDEX_TABLE_PREFIX = '__index/'

/** Longest attribute text kept verbatim in an index key (longer texts are hashed, LMDB keys are small). */
const MAX_INDEXED_TEXT = 200
const BUILD_BATCH = 1000
const PRESENT = 1

/**
 * The text an equality condition compares with (`String(value)`), or undefined when the attribute is
 * absent or null. The primary key attribute falls back to the record id, like in list conditions.
 */
export function attributeText(
  id: Key,
  value: unknown,
  attribute: string,
  primaryKey: string | undefined,
): string | undefined {
  const isObject = value !== null && typeof value === 'object'
  const own = isObject && Object.hasOwn(value, attribute)
  const actual =
    attribute === primaryKey && !own ? id : own ? (value as Record<string, unknown>)[attribute] : undefined
  return actual === undefined || actual === null ? undefined : String(actual)
}

/**
 * The first element of an index key. Long texts and texts with control characters (which the key
 * encoding uses as separators) are replaced by a hash; a lookup re-checks each record, so a collision
 * costs a read, never a wrong answer.
 */
function indexText(text: string): string {
  if (text.length <= MAX_INDEXED_TEXT && !hasControlCharacter(text)) return text
  return `\u00a7sha256:${createHash('sha256').update(text).digest('base64url')}`
}

function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) < 0x20) return true
  return false
}

/** One `@indexed` attribute: an unlogged storage table of `[text, ...id]` keys. */
export class SecondaryIndex {
  constructor(
    readonly attribute: string,
    readonly table: StorageTable<number>,
  ) {}

  key(text: string, id: Key): Key {
    return Array.isArray(id) ? [indexText(text), ...id] : [indexText(text), id as string | number]
  }

  /** Ids whose attribute text is `text` (candidates: hashed texts can collide), in id order. */
  *ids(text: string, after?: Key): Generator<Key, void, undefined> {
    const head = indexText(text)
    const start = after === undefined ? [head] : this.key(text, after)
    for (const { id: key } of this.table.entries({ start })) {
      if (!Array.isArray(key) || key[0] !== head) return
      const id: Key = key.length === 2 ? (key[1] as string | number) : key.slice(1)
      if (after !== undefined && sameKey(id, after)) continue
      yield id
    }
  }

  /** How many ids have `text`, counting at most `cap`. */
  count(text: string, cap: number): number {
    let n = 0
    for (const _ of this.ids(text)) if (++n >= cap) break
    return n
  }
}

function sameKey(a: Key, b: Key): boolean {
  if (!Array.isArray(a) || !Array.isArray(b)) return a === b
  return a.length === b.length && a.every((v, i) => v === b[i])
}

/**
 * The secondary indexes of one storage table, shared by every resource class on it. Index entries
 * are written in the same storage transaction as the record. Writes to one record are serialized
 * (only on indexed tables), so each write reads the value it replaces exactly: the store applies
 * queued transactions later, and two overlapping writes to one id would otherwise both remove the
 * same old entry and leave a stale one.
 */
export class TableIndexes {
  readonly indexes: readonly SecondaryIndex[]
  readonly #byAttribute = new Map<string, SecondaryIndex>()
  readonly #primaryKey: string | undefined
  readonly #locks = new Map<string, Promise<void>>()

  /** `indexed: false` makes a set without indexes (a Table constructed outside a runtime). */
  constructor(
    readonly store: Store,
    readonly definition: TableDefinition,
    indexed = true,
  ) {
    this.#primaryKey = definition.primaryKey?.name
    const indexes: SecondaryIndex[] = []
    for (const attribute of definition.attributes) {
      if (!attribute.indexed || !indexed) continue
      const index = new SecondaryIndex(
        attribute.name,
        store.table<number>(`${INDEX_TABLE_PREFIX}${definition.storageName}/${attribute.name}`, {
          log: false,
        }),
      )
      indexes.push(index)
      this.#byAttribute.set(attribute.name, index)
    }
    this.indexes = indexes
  }

  get size(): number {
    return this.indexes.length
  }

  get(attribute: string): SecondaryIndex | undefined {
    return this.#byAttribute.get(attribute)
  }

  /** Runs `write` after every earlier write to `id` has settled (immediately when nothing is indexed). */
  serial<T>(id: Key, write: () => Promise<T>): Promise<T> {
    if (this.indexes.length === 0) return write()
    const key = typeof id === 'string' ? `s${id}` : JSON.stringify(id)
    const previous = this.#locks.get(key)
    const result = previous === undefined ? write() : previous.then(write)
    const settled = result.then(noop, noop)
    this.#locks.set(key, settled)
    void settled.then(() => {
      if (this.#locks.get(key) === settled) this.#locks.delete(key)
    })
    return result
  }

  /** Adds the index changes for a record going from `before` to `after` (undefined = absent). */
  write(txn: WriteTransaction, id: Key, before: unknown, after: unknown): void {
    const pk = this.#primaryKey
    for (const index of this.indexes) {
      const old = before === undefined ? undefined : attributeText(id, before, index.attribute, pk)
      const now = after === undefined ? undefined : attributeText(id, after, index.attribute, pk)
      if (old !== undefined && old !== now) txn.delete(index.table, index.key(old, id))
      if (now !== undefined) txn.put(index.table, index.key(now, id), PRESENT)
    }
  }

  /**
   * Builds the indexes that are not marked complete (new `@indexed` attributes on a table with data,
   * or a build a crash interrupted) and forgets indexes the schema no longer declares. Runs before
   * the runtime accepts writes.
   */
  async prepare(records: StorageTable): Promise<void> {
    const meta = this.store.table<{ built: number }>(INDEX_META_TABLE, { log: false })
    const name = this.definition.storageName
    for (const { id } of meta.entries({ prefix: name })) {
      const attribute = Array.isArray(id) ? id[1] : undefined
      if (typeof attribute !== 'string' || this.#byAttribute.has(attribute)) continue
      // No longer indexed: its entries would go stale, so drop them; a later @indexed rebuilds.
      await clear(this.store, this.store.table(`${INDEX_TABLE_PREFIX}${name}/${attribute}`, { log: false }))
      await meta.delete(id)
    }
    const missing = this.indexes.filter((index) => meta.get([name, index.attribute]) === undefined)
    if (missing.length === 0) return
    for (const index of missing) await clear(this.store, index.table)
    const pk = this.#primaryKey
    // Page by key instead of holding one read cursor open across the awaited commits.
    let start: Key | undefined
    for (;;) {
      const range = start === undefined ? { limit: BUILD_BATCH } : { start, limit: BUILD_BATCH + 1 }
      const page = [...records.entries(range)].filter((e) => start === undefined || !sameKey(e.id, start))
      if (page.length === 0) break
      await this.store.transaction((txn) => {
        for (const { id, value } of page) {
          for (const index of missing) {
            const text = attributeText(id, value, index.attribute, pk)
            if (text !== undefined) txn.put(index.table, index.key(text, id), PRESENT)
          }
        }
      })
      start = page[page.length - 1]!.id
    }
    await this.store.transaction((txn) => {
      for (const index of missing) txn.put(meta, [name, index.attribute], { built: Date.now() })
    })
  }
}

async function clear(store: Store, table: StorageTable): Promise<void> {
  for (;;) {
    const ids = [...table.entries({ limit: BUILD_BATCH })].map((e) => e.id)
    if (ids.length === 0) return
    await store.transaction((txn) => {
      for (const id of ids) txn.delete(table, id)
    })
  }
}

function noop(): void {}
