import { randomUUID } from 'node:crypto'
import type { ChangeEvent, Key, RecordEntry, Table as StorageTable } from '@proj/storage'
import { matchesFilter } from '@proj/topic-matcher'
import { ResourceError } from './errors.js'
import type { RuntimeEvent } from './event.js'
import {
  RESOLVED_EMPTY,
  Resource,
  type ResourceInit,
  type ResourceMessage,
  type ResourcePublishOptions,
  type ResourceWriteOptions,
} from './resource.js'
import type { SchemaDefinition, TableDefinition } from './schema.js'
import type { ListQuery, PublishResult, RecordResult, RequestContext, WriteResult } from './types.js'
import { checkRecord, coerceId } from './validate.js'

/** Maps storage and codec failures to ResourceError codes; anything else is rethrown as is. */
export function toResourceError(error: unknown): unknown {
  if (error instanceof ResourceError || !(error instanceof Error)) return error
  const code = (error as { code?: unknown }).code
  switch (code) {
    case 'STORAGE_CONFLICT':
      return new ResourceError('CONFLICT', error.message, { cause: error })
    case 'STORAGE_INVALID_VALUE':
    case 'STORAGE_INVALID_KEY':
    case 'CODEC_DECODE_FAILED':
    case 'CODEC_ENCODE_FAILED':
      return new ResourceError('INVALID', error.message, { cause: error })
    case 'CODEC_UNSUPPORTED_MEDIA_TYPE':
      return new ResourceError('UNSUPPORTED_MEDIA_TYPE', error.message, { cause: error })
    case 'STORAGE_CLOSED':
      return new ResourceError('CLOSED', error.message, { cause: error })
    default:
      return error
  }
}

function rethrow(error: unknown): never {
  throw toResourceError(error)
}

export interface TableInit extends ResourceInit {
  definition: TableDefinition
  schema: SchemaDefinition
  table: StorageTable
}

/**
 * A resource backed by a storage table declared with `@table` in schema.graphql. Each table gets its
 * own subclass (`tables.Dog`), which a custom resource in resources.js may extend.
 */
export class Table extends Resource {
  readonly definition: TableDefinition
  readonly schema: SchemaDefinition
  readonly table: StorageTable
  readonly #expiresUs: number

  constructor(init: TableInit) {
    super(init)
    this.definition = init.definition
    this.schema = init.schema
    this.table = init.table
    this.#expiresUs = (init.definition.expiration ?? 0) * 1e6
  }

  override get permissionKeys(): readonly string[] {
    const keys = super.permissionKeys
    return keys.includes(this.definition.name) ? keys : [...keys, this.definition.name]
  }

  override coerceId(raw: string): Key {
    return coerceId(this.definition.primaryKey, raw, this.path)
  }

  /** Throws INVALID when `value` does not match the declared attributes. */
  validate(value: unknown): void {
    const problem = checkRecord(this.definition, value, this.schema)
    if (problem)
      throw new ResourceError('INVALID', `${this.definition.name}: ${problem}`, {
        details: { type: this.definition.name },
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
    return entry ? { id: entry.id, value: entry.value, version: entry.version } : undefined
  }

  override async list(query: ListQuery, _ctx: RequestContext): Promise<RecordResult[]> {
    const pk = this.definition.primaryKey?.name
    const where = Object.entries(query.where ?? {})
    let results: RecordResult[] = []
    for (const entry of this.table.entries()) {
      if (this.isExpired(entry.version)) continue
      const value = entry.value as Record<string, unknown> | null
      if (where.length > 0) {
        const ok = where.every(([attribute, expected]) => {
          const actual =
            attribute === pk && (value === null || typeof value !== 'object' || !(attribute in value))
              ? entry.id
              : value !== null && typeof value === 'object'
                ? value[attribute]
                : undefined
          return actual !== undefined && actual !== null && String(actual) === expected
        })
        if (!ok) continue
      }
      results.push({ id: entry.id, value: entry.value, version: entry.version })
    }
    for (const { attribute, descending } of [...(query.sort ?? [])].reverse()) {
      const direction = descending ? -1 : 1
      const read = (r: RecordResult) =>
        attribute === pk ? r.id : (r.value as Record<string, unknown> | null)?.[attribute]
      results.sort((a, b) => compare(read(a), read(b)) * direction)
    }
    const offset = query.offset ?? 0
    if (offset > 0 || query.limit !== undefined) {
      results = results.slice(offset, query.limit === undefined ? undefined : offset + query.limit)
    }
    if (query.select) {
      const select = query.select
      results = results.map((r) => {
        const value = (r.value ?? {}) as Record<string, unknown>
        const picked: Record<string, unknown> = {}
        for (const attribute of select) {
          if (attribute === pk && !(attribute in value)) picked[attribute] = r.id
          else if (attribute in value) picked[attribute] = value[attribute]
        }
        return { ...r, value: picked }
      })
    }
    return results
  }

  override async put(
    id: Key,
    value: unknown,
    ctx: RequestContext,
    options?: ResourceWriteOptions,
  ): Promise<WriteResult> {
    this.validate(value)
    this.#checkIdAttribute(id, value)
    const created = !this.has(id)
    const change = await this.table.put(id, value, writeOptions(ctx, options?.ifVersion)).catch(rethrow)
    return { id, version: change.timestamp, created }
  }

  override async patch(
    id: Key,
    patch: unknown,
    ctx: RequestContext,
    options?: ResourceWriteOptions,
  ): Promise<WriteResult> {
    if (patch === null || typeof patch !== 'object' || Array.isArray(patch) || patch instanceof Uint8Array) {
      throw new ResourceError('INVALID', 'a patch must be an object of attributes')
    }
    const current = this.entry(id)
    if (!current) throw new ResourceError('NOT_FOUND', `${this.topicFor(id)} does not exist`)
    const base = current.value !== null && typeof current.value === 'object' ? current.value : {}
    const merged = { ...(base as object), ...(patch as object) }
    for (const [key, v] of Object.entries(patch))
      if (v === undefined) delete (merged as Record<string, unknown>)[key]
    this.validate(merged)
    this.#checkIdAttribute(id, merged)
    const change = await this.table
      .patch(id, patch as Partial<unknown>, writeOptions(ctx, options?.ifVersion))
      .catch(rethrow)
    return { id, version: change.timestamp, created: false }
  }

  override async post(value: unknown, ctx: RequestContext): Promise<WriteResult> {
    this.validate(value)
    const pk = this.definition.primaryKey
    let id: Key | undefined
    const given =
      pk && value !== null && typeof value === 'object'
        ? (value as Record<string, unknown>)[pk.name]
        : undefined
    if (typeof given === 'string' || typeof given === 'number') {
      id = given
      if (this.has(id)) throw new ResourceError('CONFLICT', `${this.topicFor(id)} already exists`)
    } else {
      id = this.#newId()
    }
    const change = await this.table.put(id, value, writeOptions(ctx, undefined)).catch(rethrow)
    return { id, version: change.timestamp, created: true }
  }

  override async delete(id: Key, ctx: RequestContext, options?: ResourceWriteOptions): Promise<boolean> {
    if (options?.ifVersion === undefined && !this.has(id)) return false
    const change = await this.table.delete(id, writeOptions(ctx, options?.ifVersion)).catch(rethrow)
    return change !== undefined
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
      host.rememberPayload(message.value, message.payload, message.contentType)
      const meta = storageMeta(message, ctx)
      const user = ctx.user?.username
      return this.#commit((txn) => txn.message(this.table, id, message.value, { user, meta }), atomic)
    }
    const meta = storageMeta(message, ctx)
    const user = ctx.user?.username
    if (message.payload?.length === 0) {
      if (!atomic?.length && !this.has(id)) return RESOLVED_EMPTY
      return this.#commit((txn) => txn.delete(this.table, id, { user, meta }), atomic)
    }
    try {
      this.validate(message.value)
      this.#checkIdAttribute(id, message.value)
    } catch (error) {
      return Promise.reject(error)
    }
    host.rememberPayload(message.value, message.payload, message.contentType)
    return this.#commit((txn) => txn.put(this.table, id, message.value, { user, meta }), atomic)
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
    const change = changes.find((c) => c.table === this.table.name)
    const event = change ? this.host.toEvent(change) : null
    return event ? { event } : {}
  }

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
    event.value = entry.value
    event.timestamp = entry.version
    event.retained = true
    return event
  }

  #checkIdAttribute(id: Key, value: unknown): void {
    const pk = this.definition.primaryKey
    if (!pk || value === null || typeof value !== 'object') return
    const given = (value as Record<string, unknown>)[pk.name]
    if (given !== undefined && given !== null && String(given) !== String(id)) {
      throw new ResourceError(
        'INVALID',
        `${pk.name} ${String(given)} does not match the record id ${String(id)}`,
      )
    }
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

function writeOptions(ctx: RequestContext, ifVersion: number | undefined) {
  const options: { user?: string; ifVersion?: number; meta?: Record<string, unknown> } = {}
  if (ctx.user) options.user = ctx.user.username
  if (ifVersion !== undefined) options.ifVersion = ifVersion
  if (ctx.clientId !== undefined) options.meta = { clientId: ctx.clientId }
  return options
}

/** Meta persisted with a logged publish: the publisher's meta plus QoS and client id. */
export function storageMeta(
  message: { qos: number; meta?: Record<string, unknown> },
  ctx: RequestContext,
): Record<string, unknown> {
  const meta = message.meta
  if (meta && meta.qos === message.qos && (ctx.clientId === undefined || meta.clientId !== undefined))
    return meta
  const out: Record<string, unknown> = { ...meta, qos: message.qos }
  if (out.clientId === undefined && ctx.clientId !== undefined) out.clientId = ctx.clientId
  return out
}

function compare(a: unknown, b: unknown): number {
  if (a === b) return 0
  if (a === undefined || a === null) return 1
  if (b === undefined || b === null) return -1
  if (typeof a === 'number' && typeof b === 'number') return a - b
  return String(a) < String(b) ? -1 : 1
}
