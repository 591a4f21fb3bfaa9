import type { Key, RecordEntry, Table as StorageTable } from '@proj/storage'
import type { TableCatalog, TableHandle } from './relationships.js'
import type { Resource } from './resource.js'
import type { SchemaDefinition, TableDefinition } from './schema.js'
import type { ReadCounter, TableIndexes } from './table-indexes.js'

/**
 * What a table's write, publish and read modules use of its `Table`: its storage, indexes and record
 * rules. They take the Table itself (so a subclass's overrides of `has`, `validate` or `withPrimaryKey`
 * apply), typed by this interface so that they need not import table.ts.
 */
export type TableCore = Resource & {
  readonly definition: TableDefinition
  readonly schema: SchemaDefinition
  readonly table: StorageTable
  readonly indexes: TableIndexes
  readonly primaryKeyName: string | undefined
  readonly handle: TableHandle
  readonly catalog: TableCatalog
  readonly reads: ReadCounter
  validate(value: unknown): void
  entry(id: Key): RecordEntry | undefined
  isExpired(version: number): boolean
  storedValue(entry: { id: Key; value: unknown }): unknown
  withPrimaryKey(id: Key, value: unknown): unknown
}
