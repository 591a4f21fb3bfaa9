import { parseMediaTypeAt } from './media-type.js'

interface MediaRange {
  type: string
  subtype: string
  /** Parameters other than q (and accept-ext after it). */
  parameters: Record<string, string>
  paramCount: number
  q: number
  order: number
}

// RFC 9110 §12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/

/** Parses an Accept value into media ranges, skipping malformed members. */
function parseAccept(accept: string): MediaRange[] {
  const ranges: MediaRange[] = []
  let pos = 0
  let order = 0
  while (pos < accept.length) {
    const parsed = parseMediaTypeAt(accept, pos)
    let end: number
    if (parsed === undefined) {
      // Skip the malformed member up to the next comma (commas inside quotes are rare enough here).
      end = accept.indexOf(',', pos)
      if (end === -1) end = accept.length
    } else {
      end = parsed.end
      let q = 1
      let valid = parsed.type !== '*' || parsed.subtype === '*'
      const parameters: Record<string, string> = {}
      let paramCount = 0
      for (const name in parsed.parameters) {
        const value = parsed.parameters[name]!
        if (name === 'q') {
          if (!QVALUE.test(value)) valid = false
          q = Number(value)
          break // parameters after q are accept-ext, not media-type parameters
        }
        parameters[name] = value
        paramCount++
      }
      if (valid) ranges.push({ type: parsed.type, subtype: parsed.subtype, parameters, paramCount, q, order })
    }
    order++
    pos = end + 1
  }
  return ranges
}

const ALIASES: Record<string, string> = {
  'application/vnd.msgpack': 'application/msgpack',
  'application/x-msgpack': 'application/msgpack',
}
const canonical = (t: string): string => ALIASES[t] ?? t

/**
 * Picks the best of `available` for an `Accept` value (RFC 9110 §12.5.1): each available type gets
 * the q of the most specific matching range (`type/subtype;params` over `type/subtype` over `type/*`
 * over `*\/*`); q=0 excludes; the highest q wins, ties going to the more specific match, then to the
 * range listed first, then to the order of `available`. Aliases (`application/vnd.msgpack`,
 * `application/x-msgpack` and `application/msgpack`) match each other. An undefined or empty Accept accepts anything (the first
 * available type is returned); undefined is returned when nothing is acceptable.
 *
 * @example
 * negotiate('application/cbor;q=0.9, application/json;q=0.5', ['application/json', 'application/cbor'])
 * // 'application/cbor'
 */
export function negotiate(accept: string | undefined, available: readonly string[]): string | undefined {
  if (accept === undefined || accept.trim() === '') return available[0]
  const ranges = parseAccept(accept)
  let best: string | undefined
  let bestQ = 0
  let bestSpecificity = -1
  let bestOrder = Number.POSITIVE_INFINITY
  for (const candidate of available) {
    const parsed = parseMediaTypeAt(candidate, 0)
    if (parsed === undefined) continue
    const full = canonical(`${parsed.type}/${parsed.subtype}`)
    let matchQ = -1
    let matchSpecificity = -1
    let matchOrder = 0
    for (const range of ranges) {
      let specificity: number
      if (range.type === '*') specificity = 0
      else if (range.type !== parsed.type) continue
      else if (range.subtype === '*') specificity = 1
      else if (canonical(`${range.type}/${range.subtype}`) !== full) continue
      else {
        specificity = 2
        if (range.paramCount > 0) {
          // A range with parameters is more specific; it only applies when the candidate does not
          // declare a different value for one of them.
          let conflict = false
          for (const name in range.parameters) {
            const own = Object.hasOwn(parsed.parameters, name) ? parsed.parameters[name] : undefined
            if (own !== undefined && own !== range.parameters[name]) conflict = true
          }
          if (conflict) continue
          specificity = 2 + range.paramCount
        }
      }
      if (specificity > matchSpecificity || (specificity === matchSpecificity && range.q > matchQ)) {
        matchSpecificity = specificity
        matchQ = range.q
        matchOrder = range.order
      }
    }
    if (matchQ <= 0) continue
    if (
      matchQ > bestQ ||
      (matchQ === bestQ &&
        (matchSpecificity > bestSpecificity ||
          (matchSpecificity === bestSpecificity && matchOrder < bestOrder)))
    ) {
      best = candidate
      bestQ = matchQ
      bestSpecificity = matchSpecificity
      bestOrder = matchOrder
    }
  }
  return best
}
