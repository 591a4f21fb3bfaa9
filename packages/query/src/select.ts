import type { Accessor, AccessorFactory } from './accessor.js'
import { pathAccessor } from './accessor.js'
import type { SelectField, Selection } from './ast.js'

export interface ProjectOptions {
  /**
   * Reads the last attribute of `path` from the object reached by the path before it (the record
   * for one-element paths, a related record for `['brand', 'name']`). Return an accessor that
   * fetches related records for relationship attributes; undefined keeps the plain property read.
   */
  field?: AccessorFactory
}

type Projection = (record: unknown) => unknown

/**
 * The projection of `select()`: objects with the selected attributes (missing ones left out), the
 * value of one attribute (`select(a)`; null when missing), or arrays of values (`select([a,b])`).
 * A nested selection (`brand{name}`) projects the related record, or each of them for a list.
 *
 * @example
 * compileSelect(parseQuery('select(name,brand{name})').select!)({ name: 'x', brand: { name: 'Acme', id: 1 } })
 * // { name: 'x', brand: { name: 'Acme' } }
 */
export function compileSelect(selection: Selection, options: ProjectOptions = {}): Projection {
  const fields = selection.fields.map((field) => compileField(field, [], options))
  switch (selection.kind) {
    case 'value': {
      const { read } = fields[0]!
      return (record) => read(record) ?? null
    }
    case 'array':
      return (record) => fields.map(({ read }) => read(record) ?? null)
    case 'object':
      return objectOf(fields)
  }
}

interface CompiledField {
  name: string
  read: Accessor
}

function objectOf(fields: CompiledField[]): Projection {
  return (record) => {
    if (record === null || typeof record !== 'object') return record
    const out: Record<string, unknown> = {}
    for (const { name, read } of fields) {
      const value = read(record)
      if (value === undefined) continue
      // `__proto__` is a name like any other: an own property, never the object's prototype.
      if (name === '__proto__')
        Object.defineProperty(out, name, { value, writable: true, enumerable: true, configurable: true })
      else out[name] = value
    }
    return out
  }
}

function compileField(field: SelectField, parent: readonly string[], options: ProjectOptions): CompiledField {
  const path = [...parent, field.name]
  const get = options.field?.(path) ?? pathAccessor([field.name])
  if (!field.select) return { name: field.name, read: get }
  const nested = objectOf(field.select.map((f) => compileField(f, path, options)))
  return {
    name: field.name,
    read: (record) => {
      const value = get(record)
      if (Array.isArray(value)) return value.map(nested)
      return value === undefined || value === null ? value : nested(value)
    },
  }
}
