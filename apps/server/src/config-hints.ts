import { CONFIG_KEYS, envName, specFor } from './config-schema.js'

/** Every known key path and section (`mqtt`, `mqtt.network`, `mqtt.network.port`), for hints. */
const KNOWN_PATHS: readonly string[] = [
  ...new Set(
    CONFIG_KEYS.flatMap(({ key }) => {
      const parts = key.split('.')
      return parts.map((_, i) => parts.slice(0, i + 1).join('.'))
    }),
  ),
]

/**
 * The known key (or section) an unknown one was probably meant to be, for "did you mean" hints: the
 * same path with one segment misspelled (case, a typo, two letters swapped), or the same last segments
 * one level off (`mqtt.port` → `mqtt.network.port`). Compared case-insensitively, so it also serves
 * environment variables, which are upper case.
 */
function suggest(key: string): string | undefined {
  const parts = key.toLowerCase().split('.')
  let best: string | undefined
  let bestScore = Number.POSITIVE_INFINITY
  for (const candidate of KNOWN_PATHS) {
    const known = candidate.toLowerCase().split('.')
    if (known.length !== parts.length) continue
    let score = 0
    for (let i = 0; i < parts.length && score !== Number.POSITIVE_INFINITY; i++) {
      const d = distance(parts[i]!, known[i]!)
      // a typo is at most a third of the segment (at least one edit)
      score = d <= Math.max(1, Math.floor(known[i]!.length / 3)) ? score + d : Number.POSITIVE_INFINITY
    }
    if (score < bestScore) {
      bestScore = score
      best = candidate
    }
  }
  if (best !== undefined) return best
  // one level off: a known key under the same first section that ends with the same segments
  const tail = parts.slice(1).join('.')
  const matches = CONFIG_KEYS.map((s) => s.key).filter((k) => {
    const lower = k.toLowerCase()
    return lower.startsWith(`${parts[0]}.`) && tail !== '' && lower.endsWith(`.${tail}`)
  })
  return matches.length === 1 ? matches[0] : undefined
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps cost 1. */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  )
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[i - 2]![j - 2]! + 1)
      d[i]![j] = v
    }
  }
  return d[a.length]![b.length]!
}

/** The name among `known` that `name` was probably meant to be (a typo, case, two letters swapped). */
export function closest(name: string, known: readonly string[]): string | undefined {
  const lower = name.toLowerCase()
  let best: string | undefined
  let bestScore = Number.POSITIVE_INFINITY
  for (const candidate of known) {
    const d = distance(lower, candidate.toLowerCase())
    if (d <= Math.max(1, Math.floor(candidate.length / 3)) && d < bestScore) {
      bestScore = d
      best = candidate
    }
  }
  return best
}

/** The key an unknown `PROJ_*` variable was probably meant to set, as its variable name. */
export function suggestEnv(name: string): string | undefined {
  const key = suggest(name.slice('PROJ_'.length).split('_').join('.'))
  return key !== undefined && specFor(key) ? envName(key) : undefined
}

export function unknownKey(key: string): string {
  const hint = suggest(key)
  return hint ? `unknown key (did you mean ${hint}?)` : 'unknown key'
}
