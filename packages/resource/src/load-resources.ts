import type { Store } from '@proj/storage'
import { ResourceError } from './errors.js'
import { EventStream } from './event-stream.js'
import type { TableHandle } from './relationships.js'
import { Resource, type ResourceHost, type ResourceInit } from './resource.js'
import type { ResourceClass, ResourceKit, TableClass } from './runtime-types.js'
import type { SchemaDefinition, TableDefinition } from './schema.js'
import { Table } from './table.js'
import { tableHandle } from './table-handle.js'
import { TableIndexes } from './table-indexes.js'

export interface LoadResourcesInit {
  store: Store
  schema: SchemaDefinition
  host: ResourceHost
  /** The resources.js modules of the applications. */
  modules: Record<string, unknown>[]
  /** Resource classes by export path, given directly (RuntimeOptions.resources). */
  extra: Record<string, ResourceClass>
  /** `kit.context` for resources.js factories. */
  context: Record<string, unknown>
  /** Filled with a table class per @table type (the runtime's `tables`, which factories receive). */
  tables: Record<string, TableClass>
}

/**
 * Creates a table class per @table type (indexes prepared before any write) and one instance of every
 * exported resource class, keyed by export path: what the runtime's router then serves.
 */
export async function loadResources(init: LoadResourcesInit): Promise<Resource[]> {
  const { store, schema, host, modules, extra, context, tables } = init
  const tableByName = new Map<string, TableDefinition>()
  const catalog = new Map<string, TableHandle>()
  for (const definition of schema.tables) {
    // Change events carry the record each write replaced: query subscriptions' enter and leave.
    const storageTable = store.table(definition.storageName, { previous: true })
    tableByName.set(definition.name, definition)
    const indexes = new TableIndexes(store, definition)
    // Before any write: index the records of a table that gained @indexed attributes.
    await indexes.prepare(storageTable)
    catalog.set(definition.name, tableHandle(definition, storageTable, indexes))
    const cls = class extends Table {
      constructor(init: ResourceInit) {
        super({ ...init, definition, schema, table: storageTable, indexes, catalog })
      }
    }
    Object.defineProperty(cls, 'name', { value: definition.name })
    tables[definition.name] = cls
  }
  const classes = new Map<string, { cls: ResourceClass; name: string; definition?: TableDefinition }>()
  for (const definition of schema.tables) {
    if (definition.exportPath) {
      classes.set(definition.exportPath, {
        cls: tables[definition.name]!,
        name: definition.name,
        definition,
      })
    }
  }
  const kit: ResourceKit = { Resource, Table, tables, EventStream, ResourceError, context }
  const exported: [string, unknown][] = []
  for (const mod of modules) {
    let exports: Record<string, unknown> = mod
    const factory = mod.default
    if (typeof factory === 'function' && !isResourceClass(factory)) {
      exports = ((await (factory as (kit: ResourceKit) => unknown)(kit)) ?? {}) as Record<string, unknown>
    }
    for (const [name, value] of Object.entries(exports)) if (name !== 'default') exported.push([name, value])
  }
  exported.push(...Object.entries(extra))
  for (const [name, value] of exported) {
    if (!isResourceClass(value)) continue
    const definition = tableByName.get(name) ?? schema.tables.find((t) => t.exportPath === name)
    const path = (definition?.exportPath ?? value.path ?? name).replace(/^\/+|\/+$/g, '')
    classes.set(path, { cls: value, name: definition?.name ?? name, ...(definition ? { definition } : {}) })
  }
  const resources: Resource[] = []
  for (const [path, { cls, name }] of classes) resources.push(new cls({ host, path, name }))
  return resources
}

function isResourceClass(value: unknown): value is ResourceClass {
  if (typeof value !== 'function') return false
  const proto = (value as { prototype?: unknown }).prototype
  if (proto instanceof Resource) return true
  // A Resource subclass from another copy of this package: duck-typed.
  return (
    typeof proto === 'object' &&
    proto !== null &&
    typeof (proto as Resource).get === 'function' &&
    typeof (proto as Resource).connect === 'function' &&
    typeof (proto as Resource).publish === 'function'
  )
}
