/**
 * `@relationship` attributes: reading related records for queries (`brand.name=Acme`), sorts and
 * nested selects (`select(name,brand{name})`), and the schema types of paths through them.
 */
import type { Accessor, AccessorFactory, AttributeType, TypeLookup } from '@proj/query'
import { pathAccessor } from '@proj/query'
import type { Key, RecordEntry, Table as StorageTable } from '@proj/storage'
import { KIND_NUMBER, KIND_TEXT, textHead } from './index-keys.js'
import type { AttributeDefinition, SchemaDefinition, TableDefinition, TypeRef } from './schema.js'
import type { IndexRange, TableIndexes } from './table-indexes.js'
import { coerceId } from './validate.js'

/** A table as queries see it: storage, indexes and definition, also for tables nobody exports. */
export interface TableHandle {
  readonly definition: TableDefinition
  readonly table: StorageTable
  readonly indexes: TableIndexes
  /** The attribute that holds the id in stored values (see `primaryKeyAttribute`). */
  readonly primaryKey: string | undefined
  /** A record past `@table(expiration)` (hidden from reads). */
  isExpired(version: number): boolean
  /** The value as every door returns it (with its primary-key attribute). */
  storedValue(entry: { id: Key; value: unknown }): unknown
}

/** Every table of the schema by type name. */
export type TableCatalog = ReadonlyMap<string, TableHandle>

/** Called once per related table a query reads through a relationship (permission check). */
export type AssertRead = (related: TableHandle) => void

function scalarName(type: TypeRef): AttributeType | undefined {
  const t = type.kind === 'list' ? type.of : type
  if (t.kind === 'scalar') return t.name
  return t.kind === 'enum' ? 'String' : undefined
}

/** The related table of a relationship attribute. */
export function relatedTable(attribute: AttributeDefinition, catalog: TableCatalog): TableHandle | undefined {
  return attribute.relationship ? catalog.get(attribute.relationship.table) : undefined
}

/**
 * The reads of one query: related records are cached for its duration (a page of products of one
 * brand reads the brand once).
 */
export class Relationships {
  readonly #catalog: TableCatalog
  readonly #schema: SchemaDefinition
  readonly #assertRead: AssertRead
  readonly #checked = new Set<TableHandle>()
  readonly #byId = new Map<TableHandle, Map<string, unknown>>()
  readonly #byReference = new Map<string, unknown[]>()

  constructor(catalog: TableCatalog, schema: SchemaDefinition, assertRead: AssertRead) {
    this.#catalog = catalog
    this.#schema = schema
    this.#assertRead = assertRead
  }

  /** Schema types of attribute paths from `table`, through nested types and relationships. */
  types(table: TableHandle): TypeLookup {
    return (path) => {
      let attributes = table.definition.attributes
      for (let i = 0; i < path.length; i++) {
        const attribute = attributes.find((a) => a.name === path[i])
        if (!attribute) return undefined
        if (i === path.length - 1) return attribute.relationship ? undefined : scalarName(attribute.type)
        const related = relatedTable(attribute, this.#catalog)
        if (related) {
          attributes = related.definition.attributes
          continue
        }
        const t = attribute.type.kind === 'list' ? attribute.type.of : attribute.type
        const nested = t.kind === 'object' ? this.#schema.types.get(t.name) : undefined
        if (!nested) return undefined
        attributes = nested.attributes
      }
      return undefined
    }
  }

  /** Filter and sort accessors: a path whose first step is a relationship reads the related record(s). */
  accessor(table: TableHandle): AccessorFactory {
    return (path) => this.#pathAccessor(table, path)
  }

  /**
   * Select accessors: `path` runs from the listed record; the accessor reads its last attribute from
   * the object its other steps lead to (a related record after a relationship).
   */
  field(table: TableHandle): AccessorFactory {
    return (path) => {
      let handle: TableHandle | undefined = table
      for (let i = 0; i < path.length; i++) {
        const attribute: AttributeDefinition | undefined = handle?.definition.attributes.find(
          (a) => a.name === path[i],
        )
        if (!attribute || !handle) return undefined
        if (i === path.length - 1) {
          const owner = handle
          return attribute.relationship ? (record) => this.resolve(owner, attribute, record) : undefined
        }
        handle = relatedTable(attribute, this.#catalog) // plain nested objects hold no relationships
      }
      return undefined
    }
  }

  #pathAccessor(table: TableHandle, path: readonly string[]): Accessor | undefined {
    const attribute = table.definition.attributes.find((a) => a.name === path[0])
    const related = attribute && relatedTable(attribute, this.#catalog)
    if (!attribute || !related) return undefined
    if (path.length === 1) return (record) => this.resolve(table, attribute, record)
    const rest = path.slice(1)
    const inner = this.#pathAccessor(related, rest) ?? pathAccessor(rest)
    return (record) => {
      const value = this.resolve(table, attribute, record)
      if (!Array.isArray(value)) return value === undefined ? undefined : inner(value)
      const out: unknown[] = []
      for (const element of value) {
        const v = inner(element)
        if (Array.isArray(v)) out.push(...v)
        else if (v !== undefined) out.push(v)
      }
      return out
    }
  }

  /**
   * The related record(s) of `record` through `attribute`: for `from`, the record its id names (a list
   * of ids gives a list, in order, missing ones left out); for `to`, the list of records that point
   * back to it.
   */
  resolve(table: TableHandle, attribute: AttributeDefinition, record: unknown): unknown {
    const related = relatedTable(attribute, this.#catalog)
    const relationship = attribute.relationship
    if (!related || !relationship || record === null || typeof record !== 'object') return undefined
    this.check(related)
    if (relationship.from !== undefined) {
      const ids = Object.hasOwn(record, relationship.from)
        ? (record as Record<string, unknown>)[relationship.from]
        : undefined
      if (Array.isArray(ids)) return ids.map((id) => this.#get(related, id)).filter((r) => r !== undefined)
      return this.#get(related, ids)
    }
    const id =
      table.primaryKey === undefined ? undefined : (record as Record<string, unknown>)[table.primaryKey]
    return this.#pointingTo(related, relationship.to!, id)
  }

  /** Checks (once per query) that the caller may read `related`. */
  check(related: TableHandle): void {
    if (this.#checked.has(related)) return
    this.#assertRead(related)
    this.#checked.add(related)
  }

  /** The record of `related` with primary key `id` (coerced to the key's type), or undefined. */
  #get(related: TableHandle, id: unknown): unknown {
    if (typeof id !== 'string' && typeof id !== 'number') return undefined
    let cache = this.#byId.get(related)
    if (!cache) this.#byId.set(related, (cache = new Map()))
    const cacheKey = `${typeof id}:${id}`
    if (cache.has(cacheKey)) return cache.get(cacheKey)
    let key: Key
    try {
      key = coerceId(related.definition.primaryKey, String(id), related.definition.name)
    } catch {
      cache.set(cacheKey, undefined)
      return undefined
    }
    const entry = related.table.getEntry(key)
    const value = entry && !related.isExpired(entry.version) ? related.storedValue(entry) : undefined
    cache.set(cacheKey, value)
    return value
  }

  /** The records of `related` whose attribute `to` is `id` or a list holding it (by its index when it has one). */
  #pointingTo(related: TableHandle, to: string, id: unknown): unknown[] {
    if (typeof id !== 'string' && typeof id !== 'number') return []
    const cacheKey = `${related.definition.name}\u0000${to}\u0000${typeof id}:${id}`
    const cached = this.#byReference.get(cacheKey)
    if (cached) return cached
    const holds = (value: unknown) => {
      const v =
        value !== null && typeof value === 'object' && Object.hasOwn(value, to)
          ? (value as Record<string, unknown>)[to]
          : undefined
      return Array.isArray(v) ? v.some((x) => sameId(x, id)) : sameId(v, id)
    }
    const out: unknown[] = []
    const index = related.indexes.get(to)
    const entries: Iterable<RecordEntry> = index
      ? fetchAll(
          related,
          idRanges(id).flatMap((range) => [...index.scan(range)]),
        )
      : related.table.entries()
    for (const entry of entries) {
      if (related.isExpired(entry.version)) continue
      const value = related.storedValue(entry)
      if (holds(value)) out.push(value)
    }
    this.#byReference.set(cacheKey, out)
    return out
  }
}

/** Index ranges of an id written as text or as a number (an integer's text finds the number too). */
export function idRanges(id: string | number): IndexRange[] {
  const text = String(id)
  const ranges: IndexRange[] = [{ kind: KIND_TEXT, low: textHead(text), high: textHead(text) }]
  const n = Number(text)
  if (Number.isFinite(n) && String(n) === text) ranges.push({ kind: KIND_NUMBER, low: n, high: n })
  return ranges
}

/** An id written as a number or as its text is the same id. */
function sameId(a: unknown, b: string | number): boolean {
  return a === b || ((typeof a === 'string' || typeof a === 'number') && String(a) === String(b))
}

function* fetchAll(table: TableHandle, ids: Iterable<Key>): Generator<RecordEntry, void, undefined> {
  const seen = new Set<string>()
  for (const id of ids) {
    const key = JSON.stringify(id)
    if (seen.has(key)) continue
    seen.add(key)
    const entry = table.table.getEntry(id)
    if (entry) yield entry
  }
}
