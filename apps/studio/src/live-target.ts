import { restPath } from './api.js'

/**
 * The event-stream path for what a user types in the live view: a table path (`Dog/`, or `Dog/#` for
 * the same), a record (`Dog/1`), or a topic filter over topics no table claims (`sensors/#`,
 * `+/temp`). `tables` are the export paths, so `Dog/#` can become the table stream.
 */
export function liveTarget(input: string, tables: readonly string[]): string {
  const trimmed = input.trim().replace(/^\/+/, '')
  const wildcardTail = /^(.*)\/#$/.exec(trimmed)
  if (wildcardTail && tables.includes(wildcardTail[1]!)) return `${restPath(wildcardTail[1]!)}/`
  if (tables.includes(trimmed.replace(/\/$/, ''))) return `${restPath(trimmed.replace(/\/$/, ''))}/`
  return restPath(trimmed)
}

/** Payload text as JSON when it parses, else as a JSON string (WebSocket text frames are read as JSON). */
export function asJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}
