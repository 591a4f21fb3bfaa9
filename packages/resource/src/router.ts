import type { Key } from '@proj/storage'

/** Something routable: an export path owner. */
export interface Routable {
  readonly path: string
  coerceId(raw: string): Key
}

/** A resolved path or topic: the resource, and the id after the export path ('' when none). */
export interface Route<R extends Routable = Routable> {
  resource: R
  /** The raw id text after `path/` ('' for the resource itself). */
  idText: string
}

const CACHE_LIMIT = 10_000
/** Up to this many distinct first segments, a topic's is compared with each in place. */
const FIRST_SCAN_LIMIT = 16

/** Whether the ASCII `target` starts with `lower` (lower-cased, `length` characters), ignoring case. */
function sameFolded(lower: string, target: string, length: number): boolean {
  for (let i = 0; i < length; i++) {
    let c = target.charCodeAt(i)
    if (c >= 65 && c <= 90) c += 32
    if (c !== lower.charCodeAt(i)) return false
  }
  return true
}

/** Whether the first `length` characters of `s` are ASCII. */
function isAscii(s: string, length: number): boolean {
  for (let i = 0; i < length; i++) if (s.charCodeAt(i) >= 0x80) return false
  return true
}

/**
 * Resolves paths and topics to resources: longest export path first, then a case-insensitive match
 * of the first segment. Results are cached per topic (a broker publishes to the same topics again and again).
 */
export class Router<R extends Routable = Routable> {
  readonly #exact = new Map<string, R>()
  readonly #folded = new Map<string, R>()
  #maxDepth = 0
  readonly #cache = new Map<string, Route<R> | null>()
  /** First segments of every export path, as written and lower-cased: most unclaimed topics stop here. */
  readonly #firstSegments = new Set<string>()
  /** The same first segments lower-cased, once each, for the in-place comparison. */
  readonly #firsts: string[] = []
  /** The last target found unclaimed by its first segment (forgotten when a resource is added). */
  #lastUnclaimed: string | undefined

  add(resource: R): void {
    const path = resource.path
    this.#exact.set(path, resource)
    this.#folded.set(foldFirst(path), resource)
    this.#maxDepth = Math.max(this.#maxDepth, path.split('/').length)
    const first = path.split('/')[0]!
    this.#firstSegments.add(first)
    this.#firstSegments.add(first.toLowerCase())
    if (!this.#firsts.includes(first.toLowerCase())) this.#firsts.push(first.toLowerCase())
    this.#cache.clear()
    this.#lastUnclaimed = undefined
  }

  get(path: string): R | undefined {
    return this.#exact.get(path)
  }

  resources(): IterableIterator<R> {
    return this.#exact.values()
  }

  /** Resolves a topic or path (no leading '/'); null when no resource claims it. */
  resolve(target: string): Route<R> | null {
    if (this.#maxDepth === 0) return null
    // A publisher repeats its topic: the last unclaimed one is known (the first-segment test was 2.4 % of
    // the broker's busy time in S1).
    if (target === this.#lastUnclaimed) return null
    if (!this.#mayClaim(target)) {
      this.#lastUnclaimed = target
      return null
    }
    let route = this.#cache.get(target)
    if (route !== undefined) return route
    route = this.#resolve(target)
    if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear()
    this.#cache.set(target, route)
    return route
  }

  /**
   * False when no export path starts with the target's first segment (exactly or case-insensitively):
   * checked without the cache, so a broker's many unclaimed topics neither miss it nor evict claimed ones.
   * With few export paths each first segment is compared in place: no string is made per publish.
   */
  #mayClaim(target: string): boolean {
    const slash = target.indexOf('/')
    const firstLength = slash === -1 ? target.length : slash
    const firsts = this.#firsts
    // ASCII folds by itself; other characters may change length when lower-cased: the Set below.
    if (firsts.length <= FIRST_SCAN_LIMIT && isAscii(target, firstLength)) {
      for (let i = 0; i < firsts.length; i++) {
        const first = firsts[i]!
        if (first.length === firstLength && sameFolded(first, target, firstLength)) return true
      }
      return false
    }
    const first = target.slice(0, firstLength)
    const segments = this.#firstSegments
    return segments.has(first) || segments.has(first.toLowerCase())
  }

  #resolve(target: string): Route<R> | null {
    if (this.#maxDepth === 0 || target.charCodeAt(0) === 36 /* $ */) return null
    // Candidate prefix ends: the positions of the first maxDepth slashes, then the whole target.
    const ends: number[] = []
    let at = target.indexOf('/')
    while (at !== -1 && ends.length < this.#maxDepth) {
      ends.push(at)
      at = target.indexOf('/', at + 1)
    }
    if (ends.length < this.#maxDepth) ends.push(target.length)
    for (const map of [this.#exact, this.#folded]) {
      for (let i = ends.length - 1; i >= 0; i--) {
        const end = ends[i]!
        let prefix = target.slice(0, end)
        if (map === this.#folded) prefix = foldFirst(prefix)
        const resource = map.get(prefix)
        if (resource) return { resource, idText: end >= target.length ? '' : target.slice(end + 1) }
      }
    }
    return null
  }
}

function foldFirst(path: string): string {
  const slash = path.indexOf('/')
  return slash === -1 ? path.toLowerCase() : path.slice(0, slash).toLowerCase() + path.slice(slash)
}
