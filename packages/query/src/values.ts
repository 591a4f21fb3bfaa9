/** Orders and conversions shared by the evaluator, the sort comparator and the subscription index. */

/**
 * Compares strings by Unicode code point, which is also the order of their UTF-8 bytes (the order
 * of LMDB keys and of ordered indexes). JavaScript's `<` compares UTF-16 units instead, which puts
 * U+E000..U+FFFF after the astral planes; the two orders differ only there.
 */
export function compareText(a: string, b: string): number {
  if (a === b) return 0
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i)
    let y = b.charCodeAt(i)
    if (x === y) continue
    // Surrogates (D800-DFFF) stand for code points above FFFF: move them above E000-FFFF.
    if (x >= 0xd800) x = x >= 0xe000 ? x - 0x800 : x + 0x2000
    if (y >= 0xd800) y = y >= 0xe000 ? y - 0x800 : y + 0x2000
    return x - y
  }
  return a.length - b.length
}

/**
 * The least string greater than every string starting with `prefix`, in {@link compareText}'s order
 * (undefined: none): the upper bound of a prefix range scan.
 */
export function prefixEnd(prefix: string): string | undefined {
  const points = Array.from(prefix, (c) => c.codePointAt(0)!)
  while (points.length > 0) {
    let last = points.pop()!
    if (last === 0x10ffff) continue
    last++
    if (last === 0xd800) last = 0xe000
    points.push(last)
    return String.fromCodePoint(...points)
  }
  return undefined
}

/** Rank of a value's kind in sort order; null and missing are handled by the caller (always last). */
function rank(value: unknown): number {
  switch (typeof value) {
    case 'boolean':
      return 0
    case 'number':
    case 'bigint':
      return 1
    case 'string':
      return 3
    default:
      return value instanceof Date ? 2 : Array.isArray(value) ? 4 : 5
  }
}

/**
 * The sort order of attribute values (not null): booleans, numbers, dates, strings (by code point),
 * arrays (element by element), then anything else (equal to each other). Mixed kinds order by kind.
 */
export function compareValues(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0
  if (typeof a === 'string' && typeof b === 'string') return compareText(a, b)
  const ra = rank(a)
  const rb = rank(b)
  if (ra !== rb) return ra - rb
  switch (ra) {
    case 0:
      return Number(a) - Number(b)
    case 1: {
      const x = a as number | bigint
      const y = b as number | bigint
      return x < y ? -1 : x > y ? 1 : 0
    }
    case 2:
      return (a as Date).getTime() - (b as Date).getTime()
    case 4: {
      const x = a as unknown[]
      const y = b as unknown[]
      for (let i = 0; i < Math.min(x.length, y.length); i++) {
        const c = compareNullable(x[i], y[i])
        if (c !== 0) return c
      }
      return x.length - y.length
    }
    default:
      return 0
  }
}

/** compareValues with null and undefined after everything else. */
function compareNullable(a: unknown, b: unknown): number {
  const an = a === null || a === undefined
  const bn = b === null || b === undefined
  if (an || bn) return an === bn ? 0 : an ? 1 : -1
  return compareValues(a, b)
}
