// JSON with a fixed, documented mapping for the values JSON has no type for:
//   bigint            -> integer literal with every digit (decoded back as bigint when unsafe as a number)
//   binary            -> base64 string (RFC 4648 §4, padded); decodes as that string
//   Date              -> ISO 8601 string via toJSON; decodes as that string
//   Map / Set         -> object / array
//   undefined, functions, symbols -> omitted in objects, null in arrays, null at top level
//   NaN, ±Infinity    -> null
// Plain values take V8's native JSON.stringify / JSON.parse; the slower hand-written paths only run
// when a value holds a bigint/binary/Map/Set or the text holds an integer literal of 16+ digits.

const MAX_DEPTH = 10_000

/** Whether `value` holds anything native JSON.stringify gets wrong (bigint, binary, Map, Set). */
function needsCustom(value: unknown, depth: number): boolean {
  if (typeof value === 'bigint') return true
  if (typeof value !== 'object' || value === null) return false
  if (depth > MAX_DEPTH) throw new RangeError('value is nested too deeply (or cyclic)')
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item = value[i]
      if (typeof item === 'object' ? item !== null && needsCustom(item, depth + 1) : typeof item === 'bigint')
        return true
    }
    return false
  }
  if (
    ArrayBuffer.isView(value) ||
    value instanceof ArrayBuffer ||
    value instanceof Map ||
    value instanceof Set
  )
    return true
  if (value instanceof Date) return false
  for (const key in value) {
    const item = (value as Record<string, unknown>)[key]
    if (typeof item === 'object' ? item !== null && needsCustom(item, depth + 1) : typeof item === 'bigint')
      return true
  }
  return false
}

function toBase64(view: ArrayBufferView | ArrayBuffer): string {
  const buf = ArrayBuffer.isView(view)
    ? Buffer.from(view.buffer, view.byteOffset, view.byteLength)
    : Buffer.from(view)
  return buf.toString('base64')
}

/** Serializes one value; returns undefined for values JSON omits (undefined, functions, symbols). */
function stringifyCustom(value: unknown, key: string, depth: number): string | undefined {
  if (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { toJSON?: unknown }).toJSON === 'function'
  ) {
    if (!ArrayBuffer.isView(value)) value = (value as { toJSON(key: string): unknown }).toJSON(key)
  }
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value)
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null'
    case 'boolean':
      return value ? 'true' : 'false'
    case 'bigint':
      return value.toString()
    case 'object': {
      if (value === null) return 'null'
      if (depth > MAX_DEPTH) throw new RangeError('value is nested too deeply (or cyclic)')
      if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return `"${toBase64(value)}"`
      if (Array.isArray(value) || value instanceof Set) {
        const items = Array.isArray(value) ? value : [...value]
        let out = '['
        for (let i = 0; i < items.length; i++) {
          if (i > 0) out += ','
          out += stringifyCustom(items[i], String(i), depth + 1) ?? 'null'
        }
        return `${out}]`
      }
      let out = '{'
      let first = true
      const entries: Iterable<[unknown, unknown]> =
        value instanceof Map ? value.entries() : Object.entries(value as Record<string, unknown>)
      for (const [k, v] of entries) {
        const name = String(k)
        const text = stringifyCustom(v, name, depth + 1)
        if (text === undefined) continue
        out += `${first ? '' : ','}${JSON.stringify(name)}:${text}`
        first = false
      }
      return `${out}}`
    }
    default:
      return undefined
  }
}

/** JSON text for `value` (see the mapping at the top of this file). Throws on cycles. */
export function stringifyJson(value: unknown): string {
  if (!needsCustom(value, 0)) {
    const text = JSON.stringify(value)
    return text === undefined ? 'null' : text
  }
  return stringifyCustom(value, '', 0) ?? 'null'
}

// ---------------------------------------------------------------------------------------------------
// Parsing: JSON.parse unless an integer literal might exceed Number.MAX_SAFE_INTEGER.

const isDigit = (c: number): boolean => c >= 48 && c <= 57

/**
 * Whether the text holds a run of 16+ digits (the only way an integer literal can exceed 2^53-1).
 * Probes every 16th character, since any such run covers one of them: ~3x faster than /\d{16}/.
 */
function hasLongDigitRun(t: string): boolean {
  for (let i = 15; i < t.length; i += 16) {
    if (!isDigit(t.charCodeAt(i))) continue
    let a = i
    let b = i
    while (a > 0 && isDigit(t.charCodeAt(a - 1))) a--
    while (b + 1 < t.length && isDigit(t.charCodeAt(b + 1))) b++
    if (b - a >= 15) return true
  }
  return false
}
const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y

class BigIntJsonParser {
  pos = 0
  constructor(readonly text: string) {}

  fail(what = 'unexpected character'): never {
    throw new SyntaxError(`${what} at position ${this.pos} of JSON`)
  }

  ws(): void {
    const t = this.text
    let c = t.charCodeAt(this.pos)
    while (c === 32 || c === 10 || c === 13 || c === 9) c = t.charCodeAt(++this.pos)
  }

  value(depth: number): unknown {
    if (depth > MAX_DEPTH) this.fail('nesting too deep')
    this.ws()
    const t = this.text
    const c = t.charCodeAt(this.pos)
    if (c === 123 /* { */) {
      this.pos++
      const obj: Record<string, unknown> = {}
      this.ws()
      if (t.charCodeAt(this.pos) === 125) {
        this.pos++
        return obj
      }
      for (;;) {
        this.ws()
        if (t.charCodeAt(this.pos) !== 34) this.fail('expected a string key')
        const key = this.string()
        this.ws()
        if (t.charCodeAt(this.pos) !== 58) this.fail("expected ':'")
        this.pos++
        const v = this.value(depth + 1)
        // Same semantics as JSON.parse: "__proto__" becomes an own property, never the prototype.
        if (key === '__proto__')
          Object.defineProperty(obj, key, { value: v, writable: true, enumerable: true, configurable: true })
        else obj[key] = v
        this.ws()
        const d = t.charCodeAt(this.pos++)
        if (d === 125) return obj
        if (d !== 44) {
          this.pos--
          this.fail("expected ',' or '}'")
        }
      }
    }
    if (c === 91 /* [ */) {
      this.pos++
      const arr: unknown[] = []
      this.ws()
      if (t.charCodeAt(this.pos) === 93) {
        this.pos++
        return arr
      }
      for (;;) {
        arr.push(this.value(depth + 1))
        this.ws()
        const d = t.charCodeAt(this.pos++)
        if (d === 93) return arr
        if (d !== 44) {
          this.pos--
          this.fail("expected ',' or ']'")
        }
      }
    }
    if (c === 34) return this.string()
    if (t.startsWith('true', this.pos)) {
      this.pos += 4
      return true
    }
    if (t.startsWith('false', this.pos)) {
      this.pos += 5
      return false
    }
    if (t.startsWith('null', this.pos)) {
      this.pos += 4
      return null
    }
    NUMBER.lastIndex = this.pos
    const m = NUMBER.exec(t)
    if (m === null) this.fail()
    this.pos = NUMBER.lastIndex
    const literal = m[0]
    if (m[1] === undefined && m[2] === undefined) {
      const n = Number(literal)
      return Number.isSafeInteger(n) ? n : BigInt(literal)
    }
    return Number(literal)
  }

  string(): string {
    const t = this.text
    const start = this.pos
    let i = start + 1
    let escaped = false
    for (;;) {
      const c = t.charCodeAt(i)
      if (Number.isNaN(c)) this.fail('unterminated string')
      if (c === 34) break
      if (c === 92) {
        escaped = true
        i++
      }
      i++
    }
    this.pos = i + 1
    // Let the native parser handle escapes and reject raw control characters.
    return escaped || i - start > 64
      ? (JSON.parse(t.slice(start, i + 1)) as string)
      : checkPlain(t, start + 1, i)
  }
}

function checkPlain(t: string, start: number, end: number): string {
  for (let i = start; i < end; i++) {
    if (t.charCodeAt(i) < 32)
      throw new SyntaxError(`bad control character in string literal at position ${i} of JSON`)
  }
  return t.slice(start, end)
}

/** Parses JSON text; integer literals beyond ±(2^53-1) become bigint instead of losing digits. */
export function parseJson(text: string): unknown {
  if (!hasLongDigitRun(text)) return JSON.parse(text)
  const parser = new BigIntJsonParser(text)
  const value = parser.value(0)
  parser.ws()
  if (parser.pos !== text.length) parser.fail('unexpected data after the JSON value')
  return value
}
