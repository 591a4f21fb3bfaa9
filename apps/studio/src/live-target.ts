import { restPath } from './api.js'

/**
 * The event-stream path for what a user types in the live view: a table path (`Dog/`, or `Dog/#` for
 * the same), a table query (`Dog/?breed=lab&age=gt=3`: the records it matches, then those entering,
 * changing and leaving it), a record (`Dog/1`), or a topic filter over topics no table claims
 * (`sensors/#`, `+/temp`). `tables` are the export paths, so `Dog/#` can become the table stream. A `?`
 * starts a query only after a table's path (elsewhere it is part of a topic); the query is kept as
 * typed, since it is the server's query language, not form encoding.
 */
export function liveTarget(input: string, tables: readonly string[]): string {
  const trimmed = input.trim().replace(/^\/+/, '')
  const q = trimmed.indexOf('?')
  if (q >= 0) {
    const table = trimmed.slice(0, q).replace(/\/$/, '')
    if (tables.includes(table)) return `${restPath(table)}/${trimmed.slice(q)}`
  }
  const wildcardTail = /^(.*)\/#$/.exec(trimmed)
  if (wildcardTail && tables.includes(wildcardTail[1]!)) return `${restPath(wildcardTail[1]!)}/`
  if (tables.includes(trimmed.replace(/\/$/, ''))) return `${restPath(trimmed.replace(/\/$/, ''))}/`
  return restPath(trimmed)
}

/** The target with the session's `access_token` added to its query (EventSource cannot send headers). */
export function withToken(target: string, tokenQuery: string): string {
  return `${target}${target.includes('?') ? '&' : '?'}${tokenQuery}`
}

/** Payload text as JSON when it parses, else as a JSON string (WebSocket text frames are read as JSON). */
export function asJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}
