/** Reading attribute values out of records by path. */

/** Reads one attribute path's value from a record: a value, an array of values, or undefined. */
export type Accessor = (record: unknown) => unknown

/**
 * Supplies the accessor of a path, or undefined for the default ({@link pathAccessor}). A caller
 * with relationships returns accessors that fetch related records (`brand.name` reads the name of
 * the record `brandId` points to).
 */
export type AccessorFactory = (path: readonly string[]) => Accessor | undefined

/** Names that plain objects inherit: reading them needs an own-property check. */
function inherited(key: string): boolean {
  return key in Object.prototype
}

function property(key: string): Accessor {
  if (inherited(key)) {
    return (record) =>
      record !== null && typeof record === 'object' && Object.hasOwn(record, key)
        ? (record as Record<string, unknown>)[key]
        : undefined
  }
  return (record) =>
    record !== null && typeof record === 'object' ? (record as Record<string, unknown>)[key] : undefined
}

/**
 * The default accessor: own properties of plain objects, step by step; an array met on the way
 * stands for each of its elements, so `owners.name` on `{ owners: [{ name: 'a' }, { name: 'b' }] }`
 * reads `['a', 'b']`.
 */
export function pathAccessor(path: readonly string[]): Accessor {
  const steps = path.map(property)
  if (steps.length === 1) return steps[0]!
  return (record) => {
    let value: unknown = record
    for (let i = 0; i < steps.length; i++) {
      if (value === undefined || value === null) return undefined
      const step = steps[i]!
      if (Array.isArray(value) && i > 0) {
        const out: unknown[] = []
        for (const element of value) {
          const v = step(element)
          if (Array.isArray(v)) out.push(...v)
          else if (v !== undefined) out.push(v)
        }
        value = out
      } else value = step(value)
    }
    return value
  }
}

export function accessorFor(path: readonly string[], factory: AccessorFactory | undefined): Accessor {
  return factory?.(path) ?? pathAccessor(path)
}
