/**
 * Entity tags from record versions (RFC 9110 section 8.8.3) and the conditional request headers that
 * use them (section 13.1). A version is the record's hybrid-logical-clock timestamp, so a strong tag
 * is simply the quoted number.
 */
import type { Timestamp } from '@proj/resource'

/** A strong ETag for a record version: `"1732545741000123"`. */
export function formatETag(version: Timestamp): string {
  return `"${version}"`
}

/** One parsed entity tag from a list header. */
export interface EntityTag {
  weak: boolean
  opaque: string
}

/** `*` or a list of entity tags, as sent in If-Match / If-None-Match. */
export type TagList = '*' | EntityTag[]

/**
 * Parses an If-Match / If-None-Match header; undefined when absent. Malformed members are skipped
 * (RFC 9110 lets a recipient ignore what it cannot parse), and unquoted tags are accepted leniently.
 */
export function parseTagList(header: string | undefined): TagList | undefined {
  if (header === undefined) return undefined
  const trimmed = header.trim()
  if (trimmed === '') return undefined
  if (trimmed === '*') return '*'
  const tags: EntityTag[] = []
  const re = /\s*(W\/)?("([^"]*)"|[^,\s]+)\s*(?:,|$)/gy
  let match: RegExpExecArray | null
  while (re.lastIndex < trimmed.length && (match = re.exec(trimmed)) !== null) {
    tags.push({ weak: match[1] !== undefined, opaque: match[3] ?? match[2]! })
  }
  return tags
}

/** Strong comparison (If-Match): weak tags never match. */
export function strongMatch(list: TagList, version: Timestamp): boolean {
  if (list === '*') return true
  const opaque = String(version)
  return list.some((tag) => !tag.weak && tag.opaque === opaque)
}

/** Weak comparison (If-None-Match). */
export function weakMatch(list: TagList, version: Timestamp): boolean {
  if (list === '*') return true
  const opaque = String(version)
  return list.some((tag) => tag.opaque === opaque)
}

/** The version named by a single strong tag, so the runtime can check it atomically (`ifVersion`). */
export function singleVersion(list: TagList): Timestamp | undefined {
  if (list === '*' || list.length !== 1) return undefined
  const tag = list[0]!
  if (tag.weak || !/^-?\d+(\.\d+)?$/.test(tag.opaque)) return undefined
  return Number(tag.opaque)
}
