import { SHARE_PREFIX, validateTopicFilter } from './validate.js'

/** A parsed `$share/{group}/{filter}`. */
export interface SharedSubscription {
  /** The ShareName. */
  group: string
  /** The topic filter after the ShareName. */
  filter: string
}

/**
 * Splits an MQTT 5 shared subscription `$share/{ShareName}/{filter}` (§4.8.2). Returns null when
 * `filter` is not a shared subscription or is an invalid one (empty ShareName, `+`/`#` in it, no
 * inner filter, an invalid inner filter); use `validateTopicFilter` for the reason.
 *
 * @example
 * parseSharedSubscription('$share/workers/jobs/#') // { group: 'workers', filter: 'jobs/#' }
 * parseSharedSubscription('jobs/#')                // null
 */
export function parseSharedSubscription(filter: string): SharedSubscription | null {
  if (!filter.startsWith(SHARE_PREFIX)) return null
  if (!validateTopicFilter(filter).ok) return null
  const slash = filter.indexOf('/', SHARE_PREFIX.length)
  return { group: filter.slice(SHARE_PREFIX.length, slash), filter: filter.slice(slash + 1) }
}

/**
 * Whether `filter` asks for a shared subscription (starts with `$share/`), valid or not; cheaper than
 * `parseSharedSubscription` where the filter is known to be valid or is validated after.
 *
 * @example
 * isSharedFilter('$share/workers/jobs/#') // true
 */
export function isSharedFilter(filter: string): boolean {
  return filter.startsWith(SHARE_PREFIX)
}
