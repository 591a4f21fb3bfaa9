/**
 * Attribute names come from users (record values, `?select=`, `?sort=`, `?name=value`), so they are looked
 * up as own properties only: `constructor`, `toString` or `__proto__` are names like any other, never
 * something every object inherits, and setting one never touches a prototype.
 *
 * Storage decodes MessagePack with msgpackr, which renames a `__proto__` key to `__proto_` (its guard
 * against prototype pollution). So tables store such keys escaped: a key made of `__proto_` and one or more
 * further `_` gains one more `_` on the way in and loses it on the way out; `__proto_` itself and every
 * other key are stored as they are. A value without such keys is passed through untouched (same object).
 */

/** The value of an own property, or undefined (never an inherited one). */
export function ownValue(value: unknown, key: string): unknown {
  return value !== null && typeof value === 'object' && Object.hasOwn(value, key)
    ? (value as Record<string, unknown>)[key]
    : undefined
}

/** Sets an own property, also when the key is `__proto__`. */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__')
    Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true })
  else target[key] = value
}

/** `__proto_` followed by at least one more `_`: escaped by one more `_` when stored. */
const NEEDS_ESCAPE = /^__proto__+$/
/** What an escaped key looks like in storage. */
const ESCAPED = /^__proto___+$/

const escapeKey = (key: string): string | undefined =>
  key.length >= 9 && NEEDS_ESCAPE.test(key) ? `${key}_` : undefined
const unescapeKey = (key: string): string | undefined =>
  key.length >= 10 && ESCAPED.test(key) ? key.slice(0, -1) : undefined

/** The name an attribute has in a stored value. */
export function storedName(attribute: string): string {
  return escapeKey(attribute) ?? attribute
}

/** The value as a table stores it (`__proto__` keys escaped, at any depth). */
export function toStored<T>(value: T): T {
  return hasKey(value, escapeKey, 0) ? (renamed(value, escapeKey, 0) as T) : value
}

/** A stored value as it was written (escaped keys restored, at any depth). */
export function fromStored<T>(value: T): T {
  return hasKey(value, unescapeKey, 0) ? (renamed(value, unescapeKey, 0) as T) : value
}

const MAX_DEPTH = 10_000

/**
 * An object literal or `Object.create(null)`: no class instance, array, Date or Buffer. Storage has the same
 * four lines for its record format; they are kept twice on purpose: storage's public API is a store, not
 * helpers, and a package for one predicate would cost more than the copy.
 */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

function hasKey(value: unknown, rename: (key: string) => string | undefined, depth: number): boolean {
  if (value === null || typeof value !== 'object' || depth > MAX_DEPTH) return false
  if (Array.isArray(value)) {
    for (const item of value) if (hasKey(item, rename, depth + 1)) return true
    return false
  }
  if (!isPlainObject(value)) return false
  // for…in on a plain object is its own enumerable keys (its prototype, Object's or none, has none),
  // without the array Object.keys makes: this runs on every record read, written and delivered.
  for (const key in value) {
    if (rename(key) !== undefined || hasKey(value[key], rename, depth + 1)) return true
  }
  return false
}

function renamed(value: unknown, rename: (key: string) => string | undefined, depth: number): unknown {
  if (value === null || typeof value !== 'object' || depth > MAX_DEPTH) return value
  if (Array.isArray(value)) return value.map((item) => renamed(item, rename, depth + 1))
  if (!isPlainObject(value)) return value
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(value)) {
    setOwn(out, rename(key) ?? key, renamed(value[key], rename, depth + 1))
  }
  return out
}
