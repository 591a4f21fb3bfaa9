import { randomUUID } from 'node:crypto'
import { type BoundFilter, bindFilter } from '@proj/query'
import type { ChangeEvent, Key, RecordEntry, Table as StorageTable, WriteOptions } from '@proj/storage'
import { matchesFilter } from '@proj/topic-matcher'
import { ResourceError } from './errors.js'
import type { RuntimeEvent } from './event.js'
import { runListQuery } from './list-page.js'
import { fromStored, isPlainObject, ownValue, toStored } from './own-keys.js'
import { PublishAttachment } from './publish-attachment.js'
import { CommittedPublish } from './publish-result.js'
import { Relationships, type TableCatalog, type TableHandle } from './relationships.js'
import {
  RESOLVED_EMPTY,
  Resource,
  type ResourceInit,
  type ResourceMessage,
  type ResourcePublishOptions,
  type ResourceWriteOptions,
} from './resource.js'
import type { SchemaDefinition, TableDefinition } from './schema.js'
import { rethrow, storageMeta, toResourceError, writeOf, writeOptions } from './storage-writes.js'
import { primaryKeyAttribute, storedValueOf, tableHandle } from './table-handle.js'
import { type ReadCounter, TableIndexes } from './table-indexes.js'
import { tableQuery } from './table-query.js'
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
 * own subclass (`tables.Dog`), which a custom resource in resources.js may extend.
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
    return this.#query(query, ctx).items
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
    return this.#query(query, ctx)
  }

  #query(query: ListQuery, ctx: RequestContext): ListPage {
    const relationships = this.#relationships(ctx)
    let filter: BoundFilter | undefined
    try {
      const parsed = query.query?.filter
      filter = parsed ? bindFilter(parsed, relationships.types(this.handle)) : undefined
    } catch (error) {
      throw toResourceError(error)
    }
    // This list's own reads (reported with the page), then added to the table's running totals.
    const reads = { keys: 0, records: 0 }
    const page: ListPage = runListQuery(tableQuery(query, filter), {
      table: this.handle,
      catalog: this.catalog,
      relationships,
      counter: reads,
    })
    this.reads.keys += reads.keys
    this.reads.records += reads.records
    page.reads = reads
    return page
  }

  /** Relationships followed for `ctx`: reading a related table needs the right to read it. */
  #relationships(ctx: RequestContext): Relationships {
    return new Relationships(this.catalog, this.schema, (related) => {
      const keys = related.definition.exportPath
        ? [related.definition.exportPath, related.definition.name]
        : [related.definition.name]
      this.host.assertRead?.(ctx, keys, `${related.definition.name} (through ${this.definition.name})`)
    })
  }

  /**
   * `Dog/123.name`: when `idText` is not a record's id but ends with `.attribute` for a declared
   * attribute (or relationship), the id before it and that attribute; otherwise undefined.
   */
  propertyTarget(idText: string): { id: Key; attribute: string } | undefined {
    const dot = idText.lastIndexOf('.')
    if (dot <= 0) return undefined
    const attribute = idText.slice(dot + 1)
    if (!this.definition.attributes.some((a) => a.name === attribute)) return undefined
    try {
      if (this.has(this.coerceId(idText))) return undefined // an id that holds a dot wins
    } catch {
      // not an id of this table as a whole: try the part before the dot
    }
    try {
      return { id: this.coerceId(idText.slice(0, dot)), attribute }
    } catch {
      return undefined
    }
  }

  /** The value of one declared attribute (a relationship reads the related record or records). */
  property(value: unknown, attribute: string, ctx: RequestContext): unknown {
    const definition = this.definition.attributes.find((a) => a.name === attribute)
    if (definition?.relationship) return this.#relationships(ctx).resolve(this.handle, definition, value)
    return ownValue(value, attribute)
  }

  override put(
    id: Key,
    value: unknown,
    ctx: RequestContext,
    options?: ResourceWriteOptions,
  ): Promise<WriteResult> {
    return this.indexes.serial(id, async () => {
      const stored = this.withPrimaryKey(id, value)
      this.validate(stored)
      const created = !this.has(id)
      const change = await this.#write(
        'put',
        id,
        toStored(stored),
        stored,
        writeOptions(ctx, options?.ifVersion),
      ).catch(rethrow)
      return { id, version: change!.timestamp, created }
    })
  }

  override patch(
    id: Key,
    patch: unknown,
    ctx: RequestContext,
    options?: ResourceWriteOptions,
  ): Promise<WriteResult> {
    return this.indexes.serial(id, async () => {
      if (
        patch === null ||
        typeof patch !== 'object' ||
        Array.isArray(patch) ||
        patch instanceof Uint8Array
      ) {
        throw new ResourceError('INVALID', 'a patch must be an object of attributes')
      }
      const current = this.entry(id)
      if (!current) throw new ResourceError('NOT_FOUND', `${this.topicFor(id)} does not exist`)
      const pk = this.primaryKeyName
      let input = patch as Record<string, unknown>
      const currentValue = fromStored(current.value)
      if (pk !== undefined) {
        this.withPrimaryKey(id, { [pk]: ownValue(input, pk) }) // INVALID when the patch names another id
        // Keep the primary-key attribute in the merged record (also for records stored without it).
        const stored = ownValue(currentValue, pk)
        if (ownValue(input, pk) !== id && (stored !== id || Object.hasOwn(input, pk)))
          input = { ...input, [pk]: id }
      }
      const base = currentValue !== null && typeof currentValue === 'object' ? currentValue : {}
      const merged = { ...(base as object), ...input }
      for (const [key, v] of Object.entries(input))
        if (v === undefined) delete (merged as Record<string, unknown>)[key]
      this.validate(merged)
      const change = await this.#write(
        'patch',
        id,
        toStored(input),
        merged,
        writeOptions(ctx, options?.ifVersion),
      ).catch(rethrow)
      return { id, version: change!.timestamp, created: false }
    })
  }

  override async post(value: unknown, ctx: RequestContext): Promise<WriteResult> {
    const pk = this.primaryKeyName
    const given = pk !== undefined ? ownValue(value, pk) : undefined
    const named = typeof given === 'string' || typeof given === 'number'
    // A given id is coerced like a path id, so the record is found again at /Table/{id}.
    const id: Key = named ? this.coerceId(String(given)) : this.#newId()
    const record = this.withPrimaryKey(id, value)
    this.validate(record)
    return this.indexes.serial(id, async () => {
      if (named && this.has(id)) throw new ResourceError('CONFLICT', `${this.topicFor(id)} already exists`)
      const change = await this.#write(
        'put',
        id,
        toStored(record),
        record,
        writeOptions(ctx, undefined),
      ).catch(rethrow)
      return { id, version: change!.timestamp, created: true }
    })
  }

  override delete(id: Key, ctx: RequestContext, options?: ResourceWriteOptions): Promise<boolean> {
    return this.indexes.serial(id, async () => {
      if (options?.ifVersion === undefined && !this.has(id)) return false
      const change = await this.#write(
        'delete',
        id,
        undefined,
        undefined,
        writeOptions(ctx, options?.ifVersion),
      ).catch(rethrow)
      return change !== undefined
    })
  }

  /**
   * Deletes records past `@table(expiration)` (each only if unchanged since it was read) and returns
   * how many. The runtime calls this periodically; reads already hide expired records.
   */
  async removeExpired(): Promise<number> {
    if (this.#expiresUs <= 0) return 0
    const expired: RecordEntry[] = []
    for (const entry of this.table.entries()) if (this.isExpired(entry.version)) expired.push(entry)
    let removed = 0
    await Promise.all(
      expired.map((entry) =>
        this.indexes
          .serial(entry.id, () =>
            this.#write('delete', entry.id, undefined, undefined, {
              ifVersion: entry.version,
              user: 'expiration',
            }),
          )
          .then(
            (change) => {
              if (change) removed++
            },
            () => {},
          ),
      ),
    )
    return removed
  }

  /**
   * One record write plus its index changes, in one storage transaction (the plain table write when
   * nothing is indexed). `after` is the value the record will have (undefined for a delete).
   */
  #write(
    kind: 'put' | 'patch' | 'delete',
    id: Key,
    input: unknown,
    after: unknown,
    options: WriteOptions,
  ): Promise<ChangeEvent | undefined> {
    const table = this.table
    if (this.indexes.size === 0) {
      if (kind === 'delete') return table.delete(id, options)
      return kind === 'put' ? table.put(id, input, options) : table.patch(id, input as object, options)
    }
    return this.host.store
      .transaction((txn) => {
        if (kind === 'delete') txn.delete(table, id, options)
        else if (kind === 'put') txn.put(table, id, input, options)
        else txn.patch(table, id, input as object, options)
        this.indexes.write(txn, id, table.get(id), after)
      })
      .then((changes) => changes.find((c) => c.table === table.name))
  }

  override publish(
    id: Key,
    message: ResourceMessage,
    ctx: RequestContext,
    options?: ResourcePublishOptions,
  ): Promise<PublishResult> {
    const host = this.host
    const atomic = options?.atomic
    if (!message.retain) {
      if (message.qos === 0 && !atomic?.length) {
        const event = host.createEvent('message', this, id, this.topicFor(id), ctx, message.meta)
        event.value = message.value
        if (message.payload) {
          event.payload = message.payload
          event.contentType = message.contentType
        }
        host.dispatch(event)
        return RESOLVED_EMPTY
      }
      const stored = toStored(message.value)
      const attachment = PublishAttachment.of(stored, message.payload, message.contentType)
      const meta = storageMeta(message, ctx)
      const user = ctx.user?.username
      if (this.indexes.size === 0 && !atomic?.length)
        return this.#single(this.table.message(id, stored, writeOf(user, meta, attachment)))
      // Serialized with writes to the record on indexed tables, so a topic's events keep their order.
      return this.indexes.serial(id, () =>
        this.#commit((txn) => txn.message(this.table, id, stored, writeOf(user, meta, attachment)), atomic),
      )
    }
    const meta = storageMeta(message, ctx)
    const user = ctx.user?.username
    const indexes = this.indexes
    // No early return when the record looks absent: a retained put published just before may not have
    // committed yet, and the store's delete of an absent record is a no-op anyway.
    if (message.payload?.length === 0) {
      const write = writeOf(user, meta)
      if (indexes.size === 0 && !atomic?.length) return this.#single(this.table.delete(id, write))
      if (indexes.size === 0) return this.#commit((txn) => txn.delete(this.table, id, write), atomic)
      return indexes.serial(id, () =>
        this.#commit((txn) => {
          txn.delete(this.table, id, write)
          indexes.write(txn, id, this.table.get(id), undefined)
        }, atomic),
      )
    }
    let value: unknown
    try {
      value = this.withPrimaryKey(id, message.value)
      this.validate(value)
    } catch (error) {
      return Promise.reject(error)
    }
    const stored = toStored(value)
    // The publisher's bytes stand for the record only when it is stored exactly as decoded from them.
    const write = writeOf(
      user,
      meta,
      value === message.value
        ? PublishAttachment.of(stored, message.payload, message.contentType)
        : new PublishAttachment(),
    )
    if (indexes.size === 0 && !atomic?.length) return this.#single(this.table.put(id, stored, write))
    if (indexes.size === 0) return this.#commit((txn) => txn.put(this.table, id, stored, write), atomic)
    return indexes.serial(id, () =>
      this.#commit((txn) => {
        txn.put(this.table, id, stored, write)
        indexes.write(txn, id, this.table.get(id), value)
      }, atomic),
    )
  }

  async #commit(
    write: Parameters<typeof this.host.commit>[0],
    atomic: ResourcePublishOptions['atomic'],
  ): Promise<PublishResult> {
    let changes: ChangeEvent[]
    try {
      changes = await this.host.commit(write, atomic)
    } catch (error) {
      throw toResourceError(error)
    }
    return this.#result(changes.find((c) => c.table === this.table.name))
  }

  /** One storage write without a transaction group (nothing indexed, no state writes). */
  #single(write: Promise<ChangeEvent | undefined>): Promise<PublishResult> {
    return write.then(this.#result, rethrow)
  }

  readonly #result = (change: ChangeEvent | undefined): PublishResult =>
    change === undefined ? {} : new CommittedPublish(change, this.host.toEvent)

  override snapshot(idFilter: string, filter: string): Iterable<RuntimeEvent> {
    const out: RuntimeEvent[] = []
    const wildcard = idFilter.search(/(^|\/)[+#]($|\/)/)
    if (wildcard === -1) {
      let id: Key
      try {
        id = this.coerceId(idFilter)
      } catch {
        return out
      }
      const entry = this.entry(id)
      if (entry) out.push(this.#retained(entry))
      return out
    }
    const numeric =
      this.definition.primaryKey?.type.kind === 'scalar' &&
      ['Int', 'Long', 'Float'].includes(this.definition.primaryKey.type.name)
    let prefix = numeric ? '' : idFilter.slice(0, wildcard)
    if (prefix && idFilter[wildcard === 0 ? 0 : wildcard + 1] === '+') prefix += '/'
    for (const entry of this.table.entries(prefix ? { prefix } : undefined)) {
      if (this.isExpired(entry.version)) continue
      const topic = this.topicFor(entry.id)
      if (matchesFilter(filter, topic)) out.push(this.#retained(entry, topic))
    }
    return out
  }

  #retained(entry: RecordEntry, topic = this.topicFor(entry.id)): RuntimeEvent {
    const event = this.host.createEvent('put', this, entry.id, topic, null)
    event.value = this.storedValue(entry)
    event.timestamp = entry.version
    event.retained = true
    return event
  }

  #newId(): Key {
    const pk = this.definition.primaryKey
    if (
      pk?.type.kind === 'scalar' &&
      (pk.type.name === 'Int' || pk.type.name === 'Long' || pk.type.name === 'Float')
    ) {
      let max = 0
      for (const entry of this.table.entries({ reverse: true, limit: 1 })) {
        if (typeof entry.id === 'number') max = entry.id
      }
      return Math.floor(max) + 1
    }
    return randomUUID()
  }
}
