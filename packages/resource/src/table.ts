import type { Key, RecordEntry, Table as StorageTable } from '@proj/storage'
import { ResourceError } from './errors.js'
import type { RuntimeEvent } from './event.js'
import { isPlainObject, ownValue } from './own-keys.js'
import type { TableCatalog, TableHandle } from './relationships.js'
import {
  Resource,
  type ResourceInit,
  type ResourceMessage,
  type ResourcePublishOptions,
  type ResourceWriteOptions,
} from './resource.js'
import type { SchemaDefinition, TableDefinition } from './schema.js'
import { primaryKeyAttribute, storedValueOf, tableHandle } from './table-handle.js'
import { type ReadCounter, TableIndexes } from './table-indexes.js'
import { TablePublisher } from './table-publish.js'
import { propertyTarget, propertyValue, queryPage, retainedRecords } from './table-reads.js'
import { deleteRecord, patchRecord, postRecord, putRecord, removeExpiredRecords } from './table-writes.js'
import type {
  ListPage,
  ListQuery,
  PublishResult,
  RecordResult,
  RequestContext,
  WriteResult,
} from './types.js'
import { checkRecord, coerceId } from './validate.js'

export interface TableInit extends ResourceInit {
  definition: TableDefinition
  schema: SchemaDefinition
  table: StorageTable
  /** The table's secondary indexes (shared by every resource on the table); none when omitted. */
  indexes?: TableIndexes
  /** Every table of the schema, for relationships; only this one when omitted. */
  catalog?: TableCatalog
}

/**
 * A resource backed by a storage table declared with `@table` in schema.graphql. Each table gets its
 * own subclass (`tables.Dog`), which a custom resource in resources.js may extend. This class holds the
 * record rules (id, primary-key attribute, validation, expiry); its writes (table-writes.ts), publishes
 * (table-publish.ts) and list/retained reads (table-reads.ts) are modules given the table itself.
 */
export class Table extends Resource {
  readonly definition: TableDefinition
  readonly schema: SchemaDefinition
  readonly table: StorageTable
  /** Secondary indexes of `@indexed` attributes, kept in step by this class's write methods. */
  readonly indexes: TableIndexes
  /**
   * The attribute that holds the record id in stored values (see {@link primaryKeyAttribute}), or
   * undefined when values are stored exactly as written.
   */
  readonly primaryKeyName: string | undefined
  /** This table as queries see it. */
  readonly handle: TableHandle
  /** Every table of the schema by type name (relationships). */
  readonly catalog: TableCatalog
  /** What list queries read so far: index keys and records (monitoring, tests). */
  readonly reads: ReadCounter = { keys: 0, records: 0 }
  readonly #expiresUs: number
  readonly #publisher: TablePublisher

  constructor(init: TableInit) {
    super(init)
    this.definition = init.definition
    this.schema = init.schema
    this.table = init.table
    this.indexes = init.indexes ?? new TableIndexes(init.host.store, init.definition, false)
    this.#expiresUs = (init.definition.expiration ?? 0) * 1e6
    this.primaryKeyName = primaryKeyAttribute(init.definition)
    this.handle = tableHandle(init.definition, init.table, this.indexes)
    this.catalog = init.catalog ?? new Map([[init.definition.name, this.handle]])
    this.#publisher = new TablePublisher(this, init.host)
  }

  override get permissionKeys(): readonly string[] {
    const keys = super.permissionKeys
    return keys.includes(this.definition.name) ? keys : [...keys, this.definition.name]
  }

  override coerceId(raw: string): Key {
    return coerceId(this.definition.primaryKey, raw, this.path)
  }

  /** Throws INVALID naming every way `value` does not match the declared attributes (`details.violations`). */
  validate(value: unknown): void {
    const violations = checkRecord(this.definition, value, this.schema)
    if (violations.length > 0)
      throw new ResourceError('INVALID', `${this.definition.name}: ${violations.join('; ')}`, {
        details: { type: this.definition.name, violations },
      })
  }

  /** The stored entry, unless absent or expired. */
  entry(id: Key): RecordEntry | undefined {
    const entry = this.table.getEntry(id)
    if (entry && this.#expiresUs > 0 && this.isExpired(entry.version)) return undefined
    return entry
  }

  isExpired(version: number): boolean {
    return this.#expiresUs > 0 && Date.now() * 1000 - version > this.#expiresUs
  }

  override has(id: Key): boolean {
    return this.entry(id) !== undefined
  }

  override async get(id: Key, _ctx: RequestContext): Promise<RecordResult | undefined> {
    const entry = this.entry(id)
    return entry ? { id: entry.id, value: this.storedValue(entry), version: entry.version } : undefined
  }

  /**
   * A stored value with its primary-key attribute: records written before the runtime stored it (or
   * by a custom resource writing `this.table` directly) get it filled in on read, so every door returns
   * the same value.
   */
  storedValue(entry: { id: Key; value: unknown }): unknown {
    return storedValueOf(this.primaryKeyName, entry)
  }

  /**
   * The value to store for record `id`: a plain object gets its primary-key attribute set to the
   * (coerced) id; one that names another id is INVALID. Returns `value` itself when it already holds
   * exactly that id (so the publisher's bytes still describe it), else a copy; the caller's object
   * is never changed. Anything but a plain object (bytes, strings, arrays) is returned as is.
   */
  withPrimaryKey(id: Key, value: unknown): unknown {
    const pk = this.primaryKeyName
    if (pk === undefined || !isPlainObject(value)) return value
    const given = ownValue(value, pk)
    if (given === id) return value
    if (given !== undefined && given !== null && String(given) !== String(id)) {
      throw new ResourceError(
        'INVALID',
        `${pk} ${String(given)} does not match the record id ${String(id)}`,
        { details: { type: this.definition.name } },
      )
    }
    return { ...value, [pk]: id }
  }

  override async list(query: ListQuery, ctx: RequestContext): Promise<RecordResult[]> {
    return queryPage(this, this.host, query, ctx).items
  }

  /**
   * A page of records: equality conditions on an `@indexed` attribute read that attribute's index
   * (the most selective one when several apply); otherwise the table is scanned. Without `sort` the
   * page continues from the cursor's id in key order (keyset), otherwise the sorted result continues
   * after the cursor's sort values and id.
   */
  override async listPage(query: ListQuery, ctx: RequestContext): Promise<ListPage> {
    // A subclass that customizes list() but not listPage() keeps its list() (without a next cursor).
    if (this.list !== Table.prototype.list) return { items: await this.list(query, ctx) }
    return queryPage(this, this.host, query, ctx)
  }

  /**
   * `Dog/123.name`: when `idText` is not a record's id but ends with `.attribute` for a declared
   * attribute (or relationship), the id before it and that attribute; otherwise undefined.
   */
  propertyTarget(idText: string): { id: Key; attribute: string } | undefined {
    return propertyTarget(this, idText)
  }

  /** The value of one declared attribute (a relationship reads the related record or records). */
  property(value: unknown, attribute: string, ctx: RequestContext): unknown {
    return propertyValue(this, this.host, value, attribute, ctx)
  }

  override put(
    id: Key,
    value: unknown,
    ctx: RequestContext,
    options?: ResourceWriteOptions,
  ): Promise<WriteResult> {
    return putRecord(this, this.host.store, id, value, ctx, options)
  }

  override patch(
    id: Key,
    patch: unknown,
    ctx: RequestContext,
    options?: ResourceWriteOptions,
  ): Promise<WriteResult> {
    return patchRecord(this, this.host.store, id, patch, ctx, options)
  }

  override post(value: unknown, ctx: RequestContext): Promise<WriteResult> {
    return postRecord(this, this.host.store, value, ctx)
  }

  override delete(id: Key, ctx: RequestContext, options?: ResourceWriteOptions): Promise<boolean> {
    return deleteRecord(this, this.host.store, id, ctx, options)
  }

  /**
   * Deletes records past `@table(expiration)` (each only if unchanged since it was read) and returns
   * how many. The runtime calls this periodically; reads already hide expired records.
   */
  removeExpired(): Promise<number> {
    return removeExpiredRecords(this, this.host.store)
  }

  override publish(
    id: Key,
    message: ResourceMessage,
    ctx: RequestContext,
    options?: ResourcePublishOptions,
  ): Promise<PublishResult> {
    return this.#publisher.publish(id, message, ctx, options)
  }

  override snapshot(idFilter: string, filter: string): Iterable<RuntimeEvent> {
    return retainedRecords(this, this.host, idFilter, filter)
  }
}
