/**
 * Relations between two topic filters, without splitting them: whether they can match a common topic
 * (for overlapping subscriptions and permission rules), and whether one matches every topic the other
 * does (to decide a subscription's permission once, at subscribe time). Plain filters only (no
 * `$share/` prefix). A wildcard in the first level never matches a topic that starts with `$`
 * [MQTT-4.7.2-1], so `#` neither meets nor covers `$SYS/#`.
 */

/** A first-level wildcard (`#`, `+`) in `a` facing a first level of `b` that starts with `$`. */
function dollarMismatch(a: string, b: string): boolean {
  const c = a.charCodeAt(0)
  return (c === 35 || c === 43) && (a.length === 1 || a.charCodeAt(1) === 47) && b.charCodeAt(0) === 36
}

/**
 * Whether some topic name can match both filters (plain filters, no `$share/` prefix).
 *
 * @example
 * filtersOverlap('a/+/c', 'a/b/#') // true: 'a/b/c' matches both
 * filtersOverlap('a/+', 'a')       // false
 */
export function filtersOverlap(a: string, b: string): boolean {
  if (dollarMismatch(a, b) || dollarMismatch(b, a)) return false
  let i = 0
  let j = 0
  for (;;) {
    const aEnd = i > a.length
    const bEnd = j > b.length
    const ai = aEnd ? -1 : nextSlash(a, i)
    const bj = bEnd ? -1 : nextSlash(b, j)
    const aHash = !aEnd && ai - i === 1 && a.charCodeAt(i) === 35
    const bHash = !bEnd && bj - j === 1 && b.charCodeAt(j) === 35
    if (aHash || bHash) return true
    if (aEnd || bEnd) return aEnd && bEnd
    const aPlus = ai - i === 1 && a.charCodeAt(i) === 43
    const bPlus = bj - j === 1 && b.charCodeAt(j) === 43
    if (!aPlus && !bPlus && (ai - i !== bj - j || !a.startsWith(b.slice(j, bj), i))) return false
    i = ai + 1
    j = bj + 1
  }
}

function nextSlash(s: string, from: number): number {
  const k = s.indexOf('/', from)
  return k === -1 ? s.length : k
}

/**
 * Whether every topic that matches `filter` also matches `rule`.
 *
 * @example
 * filterCovers('a/#', 'a/+/c') // true
 * filterCovers('a/+', 'a/#')   // false: 'a/b/c' matches the filter, not the rule
 * filterCovers('#', '$SYS/#')  // false [MQTT-4.7.2-1]
 */
export function filterCovers(rule: string, filter: string): boolean {
  if (dollarMismatch(rule, filter)) return false
  let i = 0
  let j = 0
  for (;;) {
    const rEnd = i > rule.length
    const fEnd = j > filter.length
    const ri = rEnd ? -1 : nextSlash(rule, i)
    const fj = fEnd ? -1 : nextSlash(filter, j)
    if (!rEnd && ri - i === 1 && rule.charCodeAt(i) === 35) return true
    if (fEnd) return rEnd
    if (rEnd) return false
    const fHash = fj - j === 1 && filter.charCodeAt(j) === 35
    if (fHash) return false
    const rPlus = ri - i === 1 && rule.charCodeAt(i) === 43
    const fPlus = fj - j === 1 && filter.charCodeAt(j) === 43
    if (fPlus) {
      if (!rPlus) return false
    } else if (!rPlus && (ri - i !== fj - j || !rule.startsWith(filter.slice(j, fj), i))) return false
    i = ri + 1
    j = fj + 1
  }
}
