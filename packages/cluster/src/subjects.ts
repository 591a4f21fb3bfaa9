import { createHash } from 'node:crypto'

/** A record id or topic as storage keys it. */
export type SubjectKey = string | number | readonly (string | number)[]

/** Longest token kept readable; longer ones are hashed (subjects are for routing, never decoded). */
const MAX_TOKEN = 64
const SAFE = /^[A-Za-z0-9_-]+$/
const PREFIX = /^[A-Za-z0-9_-]+$/

/**
 * One NATS subject token for a piece of text: bytes outside `[A-Za-z0-9_-]` become `~XX` (upper-case hex),
 * the empty string is `~`, and a token longer than 64 bytes is `~h` plus 22 characters of its SHA-256
 * (base64url). NATS tokens cannot hold `.`, `*`, `>` or whitespace, nor be empty; `~` never appears
 * unescaped, so distinct texts give distinct tokens (up to the hash).
 *
 * @example
 * subjectToken('kitchen.temp') // 'kitchen~2Etemp'
 * subjectToken('') // '~'
 */
export function subjectToken(text: string): string {
  if (text === '') return '~'
  let token: string
  if (SAFE.test(text)) token = text
  else {
    token = ''
    for (const byte of Buffer.from(text, 'utf8')) {
      const c = String.fromCharCode(byte)
      token += byte < 0x80 && SAFE.test(c) ? c : `~${byte.toString(16).toUpperCase().padStart(2, '0')}`
    }
  }
  if (token.length <= MAX_TOKEN) return token
  return `~h${createHash('sha256').update(text).digest('base64url').slice(0, 22)}`
}

/**
 * The tokens of a record id: a string id is split on `/` (so a topic's levels become tokens and a
 * filter's wildcards map onto subject wildcards), a number is its decimal text, an array key is its
 * elements in order.
 */
export function keyTokens(id: SubjectKey): string[] {
  if (typeof id === 'number') return [subjectToken(String(id))]
  if (typeof id === 'string') return id.split('/').map(subjectToken)
  return id.map((part) => subjectToken(String(part)))
}

/** Kinds of subjects under the prefix. */
export type SubjectKind =
  /** stream: a transaction of record or state writes */
  | 'r'
  /** stream: a transaction carrying a non-retained QoS 1/2 message */
  | 'm'
  /** core NATS: a QoS 0 non-retained message */
  | 'q'

/** `<prefix>.<kind>.<table>.<id tokens…>` */
export function recordSubject(prefix: string, kind: SubjectKind, table: string, id: SubjectKey): string {
  return `${prefix}.${kind}.${subjectToken(table)}.${keyTokens(id).join('.')}`
}

/** Throws unless `prefix` can name a stream, a subject prefix and KV buckets. */
export function checkPrefix(prefix: string): string {
  if (!PREFIX.test(prefix) || prefix.length > 32)
    throw new TypeError(
      `cluster prefix must be 1-32 characters of [A-Za-z0-9_-], got ${JSON.stringify(prefix)}`,
    )
  return prefix
}
