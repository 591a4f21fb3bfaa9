/**
 * Whether a topic name matches a topic filter (MQTT 5.0 §4.7.1–§4.7.2), scanning both strings in
 * place (no split, no allocation). `+` matches exactly one level (possibly empty), `#` the parent
 * level and any number of child levels; a filter starting with a wildcard does not match a topic
 * starting with `$` [MQTT-4.7.2-1]. No normalization is performed [MQTT-4.7.3-4]. Both arguments are
 * assumed valid (see `validateTopicName` / `validateTopicFilter`); `$share/` prefixes are not
 * stripped, pass the inner filter of a shared subscription.
 *
 * @example
 * matchesFilter('sport/+/player1', 'sport/tennis/player1') // true
 * matchesFilter('sport/#', 'sport')                        // true
 * matchesFilter('#', '$SYS/uptime')                        // false
 */
export function matchesFilter(filter: string, topic: string): boolean {
  const fl = filter.length
  const tl = topic.length
  if (tl > 0 && topic.charCodeAt(0) === 36 /* $ */) {
    const f0 = filter.charCodeAt(0)
    if (f0 === 43 || f0 === 35) return false
  }
  let fi = 0
  let ti = 0
  for (;;) {
    // Both indexes sit at the start of a level.
    const c = filter.charCodeAt(fi)
    if (c === 35 /* # */ && fi + 1 === fl) return true
    if (c === 43 /* + */ && (fi + 1 === fl || filter.charCodeAt(fi + 1) === 47)) {
      while (ti < tl && topic.charCodeAt(ti) !== 47) ti++
      fi++
    } else {
      while (fi < fl) {
        const fc = filter.charCodeAt(fi)
        if (fc === 47) break
        if (ti >= tl || topic.charCodeAt(ti) !== fc) return false
        fi++
        ti++
      }
      if (ti < tl && topic.charCodeAt(ti) !== 47) return false
    }
    // Both are now at a '/' or at their end.
    if (fi === fl) return ti === tl
    if (ti === tl) {
      // The topic ended; only a trailing "/#" can still match (it matches the parent level).
      return fl - fi === 2 && filter.charCodeAt(fi + 1) === 35
    }
    fi++
    ti++
  }
}
