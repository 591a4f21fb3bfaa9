import { type BoundFilter, bindFilter } from '@proj/query'
import type { Key, RecordEntry } from '@proj/storage'
import { matchesFilter } from '@proj/topic-matcher'
import type { RuntimeEvent } from './event.js'
import { scanPrefix, splitAtWildcard } from './filter-prefix.js'
import { runListQuery } from './list-page.js'
import { ownValue } from './own-keys.js'
import { Relationships } from './relationships.js'
import type { ResourceHost } from './resource.js'
import { toResourceError } from './storage-writes.js'
import type { TableCore } from './table-core.js'
import { tableQuery } from './table-query.js'
import type { ListPage, ListQuery, RequestContext } from './types.js'

/**
 * A table's reads beyond one record: list pages, attributes and relationships of a record
 * (`Dog/1.owner`), and the current records matching a subscription's filter (retained delivery).
 */

/**
 * A page of records (see `Table.listPage`); its reads are reported with the page and added to the
 * table's running totals.
 */
export function queryPage(t: TableCore, host: ResourceHost, query: ListQuery, ctx: RequestContext): ListPage {
  const relationships = relationshipsFor(t, host, ctx)
  let filter: BoundFilter | undefined
  try {
    const parsed = query.query?.filter
    filter = parsed ? bindFilter(parsed, relationships.types(t.handle)) : undefined
  } catch (error) {
    throw toResourceError(error)
  }
  const reads = { keys: 0, records: 0 }
  const page: ListPage = runListQuery(tableQuery(query, filter), {
    table: t.handle,
    catalog: t.catalog,
    relationships,
    counter: reads,
  })
  t.reads.keys += reads.keys
  t.reads.records += reads.records
  page.reads = reads
  return page
}

/** Relationships followed for `ctx`: reading a related table needs the right to read it. */
function relationshipsFor(t: TableCore, host: ResourceHost, ctx: RequestContext): Relationships {
  return new Relationships(t.catalog, t.schema, (related) => {
    const keys = related.definition.exportPath
      ? [related.definition.exportPath, related.definition.name]
      : [related.definition.name]
    host.assertRead?.(ctx, keys, `${related.definition.name} (through ${t.definition.name})`)
  })
}

/** See `Table.propertyTarget`. */
export function propertyTarget(t: TableCore, idText: string): { id: Key; attribute: string } | undefined {
  const dot = idText.lastIndexOf('.')
  if (dot <= 0) return undefined
  const attribute = idText.slice(dot + 1)
  if (!t.definition.attributes.some((a) => a.name === attribute)) return undefined
  try {
    if (t.has(t.coerceId(idText))) return undefined // an id that holds a dot wins
  } catch {
    // not an id of this table as a whole: try the part before the dot
  }
  try {
    return { id: t.coerceId(idText.slice(0, dot)), attribute }
  } catch {
    return undefined
  }
}

/** The value of one declared attribute (a relationship reads the related record or records). */
export function propertyValue(
  t: TableCore,
  host: ResourceHost,
  value: unknown,
  attribute: string,
  ctx: RequestContext,
): unknown {
  const definition = t.definition.attributes.find((a) => a.name === attribute)
  if (definition?.relationship) return relationshipsFor(t, host, ctx).resolve(t.handle, definition, value)
  return ownValue(value, attribute)
}

/**
 * The current records matching `filter` as retained events: one record for a filter without
 * wildcards, else a scan of the id prefix before the first wildcard (the whole table for numeric ids).
 */
export function retainedRecords(
  t: TableCore,
  host: ResourceHost,
  idFilter: string,
  filter: string,
): RuntimeEvent[] {
  const out: RuntimeEvent[] = []
  const split = splitAtWildcard(idFilter)
  if (split.firstWild === -1) {
    let id: Key
    try {
      id = t.coerceId(idFilter)
    } catch {
      return out
    }
    const entry = t.entry(id)
    if (entry) out.push(retained(t, host, entry))
    return out
  }
  const numeric =
    t.definition.primaryKey?.type.kind === 'scalar' &&
    ['Int', 'Long', 'Float'].includes(t.definition.primaryKey.type.name)
  // Numeric ids are stored as numbers, not in topic order: their records are all scanned.
  const prefix = numeric ? '' : scanPrefix(split)
  for (const entry of t.table.entries(prefix ? { prefix } : undefined)) {
    if (t.isExpired(entry.version)) continue
    const topic = t.topicFor(entry.id)
    if (matchesFilter(filter, topic)) out.push(retained(t, host, entry, topic))
  }
  return out
}

function retained(
  t: TableCore,
  host: ResourceHost,
  entry: RecordEntry,
  topic = t.topicFor(entry.id),
): RuntimeEvent {
  const event = host.createEvent('put', t, entry.id, topic, null)
  event.value = t.storedValue(entry)
  event.timestamp = entry.version
  event.retained = true
  return event
}
