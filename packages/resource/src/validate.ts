import type { Key } from '@proj/storage'
import { ResourceError } from './errors.js'
import type { AttributeDefinition, SchemaDefinition, TypeDefinition, TypeRef } from './schema.js'

const INT_MIN = -(2 ** 31)
const INT_MAX = 2 ** 31 - 1

/**
 * Checks a record value against its type. Returns every violation, each a message naming the attribute
 * path (empty when valid), so a writer fixes a record in one round trip. A type with no attributes
 * accepts any value.
 */
export function checkRecord(type: TypeDefinition, value: unknown, schema: SchemaDefinition): string[] {
  const problems: string[] = []
  if (type.attributes.length === 0 && !type.sealed) return problems
  checkObject(type, value, schema, '', problems)
  return problems
}

function checkObject(
  type: TypeDefinition,
  value: unknown,
  schema: SchemaDefinition,
  path: string,
  problems: string[],
): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) {
    problems.push(`${path || 'value'} must be an object (${type.name})`)
    return
  }
  const record = value as Record<string, unknown>
  for (const attribute of type.attributes) {
    // Relationships are read from the related table, not stored: whatever a writer sends is kept as is.
    if (attribute.relationship) continue
    // own properties only: an attribute named `constructor` is absent from `{}`, not a function
    const given = Object.hasOwn(record, attribute.name) ? record[attribute.name] : undefined
    checkType(attribute.type, given, schema, join(path, attribute.name), problems)
  }
  if (type.sealed) {
    for (const key of Object.keys(record)) {
      if (!type.attributes.some((a) => a.name === key))
        problems.push(`${join(path, key)} is not an attribute of ${type.name}`)
    }
  }
}

function join(path: string, name: string | number): string {
  return typeof name === 'number' ? `${path}[${name}]` : path ? `${path}.${name}` : name
}

function checkType(
  type: TypeRef,
  value: unknown,
  schema: SchemaDefinition,
  path: string,
  problems: string[],
): void {
  if (value === undefined || value === null) {
    if (type.required) problems.push(`${path} is required`)
    return
  }
  if (type.kind === 'list') {
    if (!Array.isArray(value)) problems.push(`${path} must be a list`)
    else for (let i = 0; i < value.length; i++) checkType(type.of, value[i], schema, join(path, i), problems)
    return
  }
  if (type.kind === 'object') {
    const nested = schema.types.get(type.name)
    if (nested) checkObject(nested, value, schema, path, problems)
    return
  }
  const problem = checkLeaf(type, value, path)
  if (problem) problems.push(problem)
}

/** An enum or scalar value: undefined when valid, else the message. */
function checkLeaf(type: TypeRef, value: unknown, path: string): string | undefined {
  switch (type.kind) {
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
