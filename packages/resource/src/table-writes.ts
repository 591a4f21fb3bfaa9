import { randomUUID } from 'node:crypto'
import type { ChangeEvent, Key, RecordEntry, Store, WriteOptions } from '@proj/storage'
import { ResourceError } from './errors.js'
import { fromStored, ownValue, toStored } from './own-keys.js'
import type { ResourceWriteOptions } from './resource.js'
import { rethrow, writeOptions } from './storage-writes.js'
import type { TableCore } from './table-core.js'
import type { RequestContext, WriteResult } from './types.js'

/**
 * A table's REST-style writes (put, patch, post, delete) and its expiry deletes. Each is serialized per
 * record with the index updates, and checks the record rules (primary key, declared attributes) first.
 */

export function putRecord(
  t: TableCore,
  store: Store,
  id: Key,
  value: unknown,
  ctx: RequestContext,
  options?: ResourceWriteOptions,
): Promise<WriteResult> {
  return t.indexes.serial(id, async () => {
    const stored = t.withPrimaryKey(id, value)
    t.validate(stored)
    const created = !t.has(id)
    const change = await writeRecord(
      t,
      store,
      'put',
      id,
      toStored(stored),
      stored,
      writeOptions(ctx, options?.ifVersion),
    ).catch(rethrow)
    return { id, version: change!.timestamp, created }
  })
}

export function patchRecord(
  t: TableCore,
  store: Store,
  id: Key,
  patch: unknown,
  ctx: RequestContext,
  options?: ResourceWriteOptions,
): Promise<WriteResult> {
  return t.indexes.serial(id, async () => {
    if (patch === null || typeof patch !== 'object' || Array.isArray(patch) || patch instanceof Uint8Array) {
      throw new ResourceError('INVALID', 'a patch must be an object of attributes')
    }
    const current = t.entry(id)
    if (!current) throw new ResourceError('NOT_FOUND', `${t.topicFor(id)} does not exist`)
    const pk = t.primaryKeyName
    let input = patch as Record<string, unknown>
    const currentValue = fromStored(current.value)
    if (pk !== undefined) {
      t.withPrimaryKey(id, { [pk]: ownValue(input, pk) }) // INVALID when the patch names another id
      // Keep the primary-key attribute in the merged record (also for records stored without it).
      const stored = ownValue(currentValue, pk)
      if (ownValue(input, pk) !== id && (stored !== id || Object.hasOwn(input, pk)))
        input = { ...input, [pk]: id }
    }
    const base = currentValue !== null && typeof currentValue === 'object' ? currentValue : {}
    const merged = { ...(base as object), ...input }
    for (const [key, v] of Object.entries(input))
      if (v === undefined) delete (merged as Record<string, unknown>)[key]
    t.validate(merged)
    const change = await writeRecord(
      t,
      store,
      'patch',
      id,
      toStored(input),
      merged,
      writeOptions(ctx, options?.ifVersion),
    ).catch(rethrow)
    return { id, version: change!.timestamp, created: false }
  })
}

export async function postRecord(
  t: TableCore,
  store: Store,
  value: unknown,
  ctx: RequestContext,
): Promise<WriteResult> {
  const pk = t.primaryKeyName
  const given = pk !== undefined ? ownValue(value, pk) : undefined
  const named = typeof given === 'string' || typeof given === 'number'
  // A given id is coerced like a path id, so the record is found again at /Table/{id}.
  const id: Key = named ? t.coerceId(String(given)) : newId(t)
  const record = t.withPrimaryKey(id, value)
  t.validate(record)
  return t.indexes.serial(id, async () => {
    if (named && t.has(id)) throw new ResourceError('CONFLICT', `${t.topicFor(id)} already exists`)
    const change = await writeRecord(
      t,
      store,
      'put',
      id,
      toStored(record),
      record,
      writeOptions(ctx, undefined),
    ).catch(rethrow)
    return { id, version: change!.timestamp, created: true }
  })
}

export function deleteRecord(
  t: TableCore,
  store: Store,
  id: Key,
  ctx: RequestContext,
  options?: ResourceWriteOptions,
): Promise<boolean> {
  return t.indexes.serial(id, async () => {
    if (options?.ifVersion === undefined && !t.has(id)) return false
    const change = await writeRecord(
      t,
      store,
      'delete',
      id,
      undefined,
      undefined,
      writeOptions(ctx, options?.ifVersion),
    ).catch(rethrow)
    return change !== undefined
  })
}

/** Deletes the records past the table's expiration, each only if unchanged since read; returns how many. */
export async function removeExpiredRecords(t: TableCore, store: Store): Promise<number> {
  if ((t.definition.expiration ?? 0) <= 0) return 0
  const expired: RecordEntry[] = []
  for (const entry of t.table.entries()) if (t.isExpired(entry.version)) expired.push(entry)
  let removed = 0
  await Promise.all(
    expired.map((entry) =>
      t.indexes
        .serial(entry.id, () =>
          writeRecord(t, store, 'delete', entry.id, undefined, undefined, {
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
function writeRecord(
  t: TableCore,
  store: Store,
  kind: 'put' | 'patch' | 'delete',
  id: Key,
  input: unknown,
  after: unknown,
  options: WriteOptions,
): Promise<ChangeEvent | undefined> {
  const table = t.table
  if (t.indexes.size === 0) {
    if (kind === 'delete') return table.delete(id, options)
    return kind === 'put' ? table.put(id, input, options) : table.patch(id, input as object, options)
  }
  return store
    .transaction((txn) => {
      if (kind === 'delete') txn.delete(table, id, options)
      else if (kind === 'put') txn.put(table, id, input, options)
      else txn.patch(table, id, input as object, options)
      t.indexes.write(txn, id, table.get(id), after)
    })
    .then((changes) => changes.find((c) => c.table === table.name))
}

/** A new record id: one past the highest for numeric primary keys, else a random UUID. */
function newId(t: TableCore): Key {
  const pk = t.definition.primaryKey
  if (
    pk?.type.kind === 'scalar' &&
    (pk.type.name === 'Int' || pk.type.name === 'Long' || pk.type.name === 'Float')
  ) {
    let max = 0
    for (const entry of t.table.entries({ reverse: true, limit: 1 })) {
      if (typeof entry.id === 'number') max = entry.id
    }
    return Math.floor(max) + 1
  }
  return randomUUID()
}
