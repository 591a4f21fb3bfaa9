import { openStore } from '@proj/storage'
import { type ApplicationSource, importResources, readApplication } from './application.js'
import { ResourceError } from './errors.js'
import { RuntimeImpl } from './runtime.js'
import type { ResourceRuntime, RuntimeOptions } from './runtime-types.js'
import { parseSchema, type SchemaDefinition, type TableDefinition } from './schema.js'

/**
 * Opens the resource runtime: the storage, the applications' tables and resources, users and roles.
 *
 * @example
 * const runtime = await openRuntime({ path: './data', applications: ['./app'], allowAnonymous: true })
 * const ctx = { user: null }
 * await runtime.subscribe('Dog/#', (event) => console.log(event.type, event.topic), {}, ctx)
 * await runtime.put('Dog/1', { name: 'Rex' }, ctx)
 */
export async function openRuntime(options: RuntimeOptions = {}): Promise<ResourceRuntime> {
  const apps: ApplicationSource[] = []
  for (const dir of options.applications ?? []) apps.push(await readApplication(dir))
  const schemas: { source: string; file: string }[] = []
  for (const app of apps) if (app.schema) schemas.push(app.schema)
  for (const [i, s] of (options.schemas ?? []).entries())
    schemas.push({ source: s.source, file: s.file ?? `schema-${i}.graphql` })
  const schema = mergeSchemas(schemas.map((s) => parseSchema(s.source, s.file)))
  const modules: Record<string, unknown>[] = []
  for (const app of apps) if (app.resourcesFile) modules.push(await importResources(app.resourcesFile))
  const roles = [...apps.flatMap((a) => a.config.roles ?? []), ...(options.roles ?? [])]

  const ownStore = options.store === undefined
  const store =
    options.store ??
    (await openStore({
      path: options.path ?? './data',
      ...(options.nodeId !== undefined ? { nodeId: options.nodeId } : {}),
      ...(options.retention !== undefined ? { retention: options.retention } : {}),
      ...(options.compactionIntervalMs !== undefined
        ? { compactionIntervalMs: options.compactionIntervalMs }
        : {}),
      ...(options.noSync !== undefined ? { noSync: options.noSync } : {}),
      ...(options.onError !== undefined ? { onError: options.onError } : {}),
    }))
  try {
    const runtime = new RuntimeImpl(store, ownStore, schema, roles, options)
    await runtime.register(modules, options.resources ?? {}, options.context ?? {})
    return runtime
  } catch (error) {
    if (ownStore) await store.close()
    throw error
  }
}

function mergeSchemas(schemas: SchemaDefinition[]): SchemaDefinition {
  const merged: SchemaDefinition = { types: new Map(), enums: new Map(), tables: [] }
  const paths = new Map<string, TableDefinition>()
  const names = new Map<string, TableDefinition>()
  for (const schema of schemas) {
    for (const [name, type] of schema.types) {
      const other = merged.types.get(name)
      if (other) {
        throw new ResourceError(
          'SCHEMA_INVALID',
          `${type.file}:${type.line}:${type.column}: type ${name} is also defined in ${other.file}:${other.line}:${other.column}`,
        )
      }
      merged.types.set(name, type)
    }
    for (const [name, values] of schema.enums) merged.enums.set(name, values)
    for (const table of schema.tables) {
      const where = `${table.file}:${table.line}:${table.column}`
      if (table.exportPath && paths.has(table.exportPath)) {
        throw new ResourceError('SCHEMA_INVALID', `${where}: export path ${table.exportPath} is used twice`)
      }
      if (names.has(table.storageName))
        throw new ResourceError('SCHEMA_INVALID', `${where}: table ${table.storageName} is declared twice`)
      if (table.exportPath) paths.set(table.exportPath, table)
      names.set(table.storageName, table)
      merged.tables.push(table)
    }
  }
  return merged
}
