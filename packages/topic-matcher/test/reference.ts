// Brute-force reference implementations, written straight from the spec text with split('/').

/** MQTT 5.0 §4.7.1–4.7.2 by recursion over levels. */
export function referenceMatch(filter: string, topic: string): boolean {
  const f = filter.split('/')
  const t = topic.split('/')
  // [MQTT-4.7.2-1]
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false
  const rec = (i: number, j: number): boolean => {
    if (i === f.length) return j === t.length
    if (f[i] === '#') return true // matches the parent and any number of child levels
    if (j === t.length) return false
    if (f[i] === '+' || f[i] === t[j]) return rec(i + 1, j + 1)
    return false
  }
  return rec(0, 0)
}

const utf8Bytes = (s: string): number => Buffer.byteLength(s, 'utf8')
const wellFormed = (s: string): boolean =>
  !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s)

export function referenceValidName(topic: string): boolean {
  return (
    topic.length > 0 &&
    !/[+#]/.test(topic) &&
    !topic.includes('\u0000') &&
    wellFormed(topic) &&
    utf8Bytes(topic) <= 65535
  )
}

export function referenceValidFilter(filter: string): boolean {
  if (filter.length === 0 || filter.includes('\u0000') || !wellFormed(filter) || utf8Bytes(filter) > 65535)
    return false
  const levels = filter.split('/')
  if (filter.startsWith('$share/')) {
    const group = levels[1]!
    if (group === '' || /[+#]/.test(group) || levels.length < 3 || levels.slice(2).join('/') === '')
      return false
  }
  return levels.every(
    (level, i) =>
      (level === '#' ? i === levels.length - 1 : !level.includes('#')) &&
      (level === '+' || !level.includes('+')),
  )
}

/** Whether every topic matching `filter` matches `rule`, level by level over split('/'). */
export function referenceFilterCovers(rule: string, filter: string): boolean {
  const r = rule.split('/')
  const f = filter.split('/')
  // [MQTT-4.7.2-1]
  if ((r[0] === '#' || r[0] === '+') && f[0]!.startsWith('$')) return false
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
