import type { Key, Table as StorageTable } from '@proj/storage'
import { fromStored, isPlainObject } from './own-keys.js'
import type { TableHandle } from './relationships.js'
import type { TableDefinition } from './schema.js'
import type { TableIndexes } from './table-indexes.js'

/** A table's storage, indexes and read rules, as queries and relationships use them. */
export function tableHandle(
  definition: TableDefinition,
  table: StorageTable,
  indexes: TableIndexes,
): TableHandle {
  const primaryKey = primaryKeyAttribute(definition)
  const expiresUs = (definition.expiration ?? 0) * 1e6
  return {
    definition,
    table,
    indexes,
    primaryKey,
    isExpired: (version) => expiresUs > 0 && Date.now() * 1000 - version > expiresUs,
    storedValue: (entry) => storedValueOf(primaryKey, entry),
  }
}

/** A stored value as read: escaped keys restored, and the primary-key attribute filled in. */
export function storedValueOf(pk: string | undefined, entry: { id: Key; value: unknown }): unknown {
  const value = fromStored(entry.value)
  if (pk === undefined || !isPlainObject(value) || Object.hasOwn(value, pk)) return value
  return { ...value, [pk]: entry.id }
}

const ID_TYPES: ReadonlySet<string> = new Set(['ID', 'String', 'Any'])

/**
 * The attribute of stored values that holds the record id: the `@primaryKey` (`@id`) attribute, else
 * `id`, so that every record read through any door names its id. A table without `@primaryKey` keeps
 * values exactly as written only when `id` cannot hold its (string) ids: the type declares `id` with
 * another type (`id: Int` without `@primaryKey`), or is `@sealed` without an `id` attribute.
 */
export function primaryKeyAttribute(definition: TableDefinition): string | undefined {
  if (definition.primaryKey) return definition.primaryKey.name
  const declared = definition.attributes.find((a) => a.name === 'id')
  if (declared) return declared.type.kind === 'scalar' && ID_TYPES.has(declared.type.name) ? 'id' : undefined
  return definition.sealed ? undefined : 'id'
}
