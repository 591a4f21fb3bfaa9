/** A topic filter split into levels, and the index of its first wildcard level (-1 when none). */
export interface SplitFilter {
  segments: string[]
  firstWild: number
}

/**
 * Splits a topic filter at its first `+` or `#` level: the literal prefix before it decides which
 * resource (or the built-in topics) a subscription reaches.
 *
 * @example
 * splitAtWildcard('Dog/+/name') // { segments: ['Dog', '+', 'name'], firstWild: 1 }
 */
export function splitAtWildcard(filter: string): SplitFilter {
  const segments = filter.split('/')
  return { segments, firstWild: segments.findIndex((s) => s === '+' || s === '#') }
}

/** The levels before the first wildcard, joined (`Dog/a` for `Dog/a/#`); the whole filter when none. */
export function literalPrefix({ segments, firstWild }: SplitFilter): string {
  return firstWild === -1 ? segments.join('/') : segments.slice(0, firstWild).join('/')
}

/**
 * The key prefix every topic a wildcard filter matches starts with, for a storage range scan: the
 * literal levels, plus the `/` before a `+` (`Dog/+` scans `Dog/`; `Dog/#` scans `Dog`, which `Dog`
 * itself matches). Empty when the filter starts with a wildcard.
 */
export function scanPrefix(split: SplitFilter): string {
  const { segments, firstWild } = split
  if (firstWild === -1) return segments.join('/')
  return literalPrefix(split) + (firstWild > 0 && segments[firstWild] === '+' ? '/' : '')
}
