import type { Key } from '@proj/storage'
import { ResourceError } from './errors.js'
import type { AttributeDefinition, SchemaDefinition, TypeDefinition, TypeRef } from './schema.js'

const INT_MIN = -(2 ** 31)
const INT_MAX = 2 ** 31 - 1

/**
 * Checks a record value against its type. Returns undefined when valid, else a message naming the
 * attribute path. A type with no attributes accepts any value.
 */
export function checkRecord(
  type: TypeDefinition,
  value: unknown,
  schema: SchemaDefinition,
): string | undefined {
  if (type.attributes.length === 0 && !type.sealed) return undefined
  return checkObject(type, value, schema, '')
}

function checkObject(
  type: TypeDefinition,
  value: unknown,
  schema: SchemaDefinition,
  path: string,
): string | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) {
    return `${path || 'value'} must be an object (${type.name})`
  }
  const record = value as Record<string, unknown>
  for (const attribute of type.attributes) {
    // Relationships are read from the related table, not stored: whatever a writer sends is kept as is.
    if (attribute.relationship) continue
    // own properties only: an attribute named `constructor` is absent from `{}`, not a function
    const given = Object.hasOwn(record, attribute.name) ? record[attribute.name] : undefined
    const problem = checkType(attribute.type, given, schema, join(path, attribute.name))
    if (problem) return problem
  }
  if (type.sealed) {
    for (const key of Object.keys(record)) {
      if (!type.attributes.some((a) => a.name === key))
        return `${join(path, key)} is not an attribute of ${type.name}`
    }
  }
  return undefined
}

function join(path: string, name: string | number): string {
  return typeof name === 'number' ? `${path}[${name}]` : path ? `${path}.${name}` : name
}

function checkType(
  type: TypeRef,
  value: unknown,
  schema: SchemaDefinition,
  path: string,
): string | undefined {
  if (value === undefined || value === null) return type.required ? `${path} is required` : undefined
  switch (type.kind) {
    case 'list': {
      if (!Array.isArray(value)) return `${path} must be a list`
      for (let i = 0; i < value.length; i++) {
        const problem = checkType(type.of, value[i], schema, join(path, i))
        if (problem) return problem
      }
      return undefined
    }
    case 'object': {
      const nested = schema.types.get(type.name)
      return nested ? checkObject(nested, value, schema, path) : undefined
    }
    case 'enum':
      return typeof value === 'string' && type.values.has(value)
        ? undefined
        : `${path} must be one of ${[...type.values].join(', ')}`
    case 'scalar':
      switch (type.name) {
        case 'ID':
          return typeof value === 'string' || (typeof value === 'number' && Number.isInteger(value))
            ? undefined
            : `${path} must be an ID (string or integer)`
        case 'String':
          return typeof value === 'string' ? undefined : `${path} must be a String`
        case 'Int':
          return typeof value === 'number' && Number.isInteger(value) && value >= INT_MIN && value <= INT_MAX
            ? undefined
            : `${path} must be an Int (32-bit integer)`
        case 'Long':
          return (typeof value === 'number' && Number.isSafeInteger(value)) || typeof value === 'bigint'
            ? undefined
            : `${path} must be a Long (integer)`
        case 'Float':
          return typeof value === 'number' && Number.isFinite(value) ? undefined : `${path} must be a Float`
        case 'Boolean':
          return typeof value === 'boolean' ? undefined : `${path} must be a Boolean`
        case 'Date':
          if (value instanceof Date)
            return Number.isNaN(value.getTime()) ? `${path} is an invalid Date` : undefined
          if (typeof value === 'number' && Number.isFinite(value)) return undefined
          if (typeof value === 'string' && !Number.isNaN(Date.parse(value))) return undefined
          return `${path} must be a Date (ISO 8601 string or epoch milliseconds)`
        case 'Bytes':
          return value instanceof Uint8Array ? undefined : `${path} must be Bytes`
        case 'Any':
          return undefined
      }
  }
}

/** Coerces an id taken from a path or topic to the primary key's declared type. */
export function coerceId(primaryKey: AttributeDefinition | undefined, raw: string, path: string): Key {
  if (primaryKey?.type.kind !== 'scalar') return raw
  switch (primaryKey.type.name) {
    case 'Int':
    case 'Long': {
      if (!/^-?\d{1,16}$/.test(raw))
        throw new ResourceError('INVALID', `id "${raw}" of ${path} must be an integer`)
      const n = Number(raw)
      if (!Number.isSafeInteger(n) || (primaryKey.type.name === 'Int' && (n < INT_MIN || n > INT_MAX))) {
        throw new ResourceError('INVALID', `id "${raw}" of ${path} is out of range`)
      }
      return n
    }
    case 'Float': {
      const n = Number(raw)
      if (raw.trim() === '' || !Number.isFinite(n))
        throw new ResourceError('INVALID', `id "${raw}" of ${path} must be a number`)
      return n
    }
    default:
      return raw
  }
}
