/**
 * Relations between two MQTT topic filters, used to decide a subscription's permission once at
 * subscribe time instead of per message. Filters are split on '/'. A wildcard in the first level never
 * matches a topic that starts with '$' [MQTT-4.7.2-1], so a `#` rule neither covers nor meets `$SYS/#`.
 */

/** A first-level wildcard (`#`, `+`) facing a first level that starts with `$`: no topic matches both. */
function dollarMismatch(a: string | undefined, b: string | undefined): boolean {
  return (a === '#' || a === '+') && b !== undefined && b.charCodeAt(0) === 36 /* $ */
}

/** True when every topic that matches `filter` also matches `rule`. */
export function filterCovers(rule: string, filter: string): boolean {
  const r = rule.split('/')
  const f = filter.split('/')
  if (dollarMismatch(r[0], f[0])) return false
  for (let i = 0; ; i++) {
    const rs = r[i]
    const fs = f[i]
    if (rs === '#') return true
    if (fs === undefined) return rs === undefined
    if (rs === undefined) return false
    if (fs === '#') return false
    if (fs === '+') {
      if (rs !== '+') return false
    } else if (rs !== '+' && rs !== fs) return false
  }
}

/** True when some topic matches both filters. */
export function filtersIntersect(a: string, b: string): boolean {
  const x = a.split('/')
  const y = b.split('/')
  if (dollarMismatch(x[0], y[0]) || dollarMismatch(y[0], x[0])) return false
  for (let i = 0; ; i++) {
    const xs = x[i]
    const ys = y[i]
    if (xs === '#' || ys === '#') return true
    if (xs === undefined || ys === undefined) return xs === ys
    if (xs !== '+' && ys !== '+' && xs !== ys) return false
  }
}
