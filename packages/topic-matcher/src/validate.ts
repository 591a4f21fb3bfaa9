import { TopicError, type TopicErrorCode } from './errors.js'

/** Outcome of a validator: no exceptions on the hot path. */
export type ValidationResult = { ok: true } | { ok: false; code: TopicErrorCode; reason: string }

/** Options of {@link validateTopicFilter}. */
export interface ValidateFilterOptions {
  /**
   * Treat `$share/{ShareName}/{filter}` as an MQTT 5 shared subscription and check its ShareName
   * (default true). Pass false for MQTT 3.1.1, where it is an ordinary filter.
   */
  shared?: boolean
}

const OK: ValidationResult = Object.freeze({ ok: true })

// Results are constants: validating allocates nothing.
const fail = (code: TopicErrorCode, reason: string): ValidationResult =>
  Object.freeze({ ok: false, code, reason })
const EMPTY = fail('TOPIC_EMPTY', 'must be at least one character long [MQTT-4.7.3-1]')
const TOO_LONG = fail('TOPIC_TOO_LONG', 'must not encode to more than 65535 bytes of UTF-8 [MQTT-4.7.3-3]')
const NUL = fail('TOPIC_NULL_CHARACTER', 'must not include the null character U+0000 [MQTT-4.7.3-2]')
const BAD_UTF8 = fail(
  'TOPIC_INVALID_UTF8',
  'must be well-formed UTF-16 (a lone surrogate has no UTF-8 form) [MQTT-1.5.4-1]',
)
const WILDCARD_IN_NAME = fail(
  'TOPIC_WILDCARD_IN_NAME',
  "a topic name must not contain '+' or '#' [MQTT-4.7.0-1]",
)
const BAD_HASH = fail(
  'TOPIC_INVALID_MULTI_LEVEL_WILDCARD',
  "'#' must be on its own or follow '/', and be the last character [MQTT-4.7.1-1]",
)
const BAD_PLUS = fail('TOPIC_INVALID_SINGLE_LEVEL_WILDCARD', "'+' must occupy an entire level [MQTT-4.7.1-2]")
const BAD_SHARE_NAME = fail(
  'TOPIC_INVALID_SHARE_NAME',
  "a ShareName must be at least one character and must not contain '/', '+' or '#' [MQTT-4.8.2-1] [MQTT-4.8.2-2]",
)
const BAD_SHARED_FILTER = fail(
  'TOPIC_INVALID_SHARED_FILTER',
  "'$share/{ShareName}' must be followed by '/' and a topic filter [MQTT-4.8.2-2]",
)

/** A UTF-16 code unit never needs more than 3 UTF-8 bytes; below this length no count is needed. */
const SAFE_LENGTH = Math.floor(65535 / 3)

function utf8Length(s: string): number {
  let bytes = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) bytes += 1
    else if (c < 0x800) bytes += 2
    else if (c >= 0xd800 && c <= 0xdbff) {
      bytes += 4
      i++
    } else bytes += 3
  }
  return bytes
}

/** Checks a surrogate at `i`; returns the index of the last unit of the character, or -1 if ill-formed. */
function surrogateEnd(s: string, i: number, c: number): number {
  if (c <= 0xdbff) {
    const d = s.charCodeAt(i + 1)
    return d >= 0xdc00 && d <= 0xdfff ? i + 1 : -1
  }
  return -1 // a low surrogate without a high one before it
}

/**
 * Validates a topic name (the topic of a PUBLISH, a will, a retained message) per MQTT 5.0 §4.7
 * and 3.1.1 §4.7: non-empty, no `+`/`#`, no U+0000, well-formed, at most 65,535 UTF-8 bytes.
 * Empty levels (`a//b`, `/a`, `a/`) are valid. Never throws, never allocates.
 *
 * @example
 * validateTopicName('Dog/123') // { ok: true }
 * validateTopicName('Dog/+')   // { ok: false, code: 'TOPIC_WILDCARD_IN_NAME', reason: '...' }
 */
export function validateTopicName(topic: string): ValidationResult {
  const len = topic.length
  if (len === 0) return EMPTY
  for (let i = 0; i < len; i++) {
    const c = topic.charCodeAt(i)
    if (c > 43) {
      if (c >= 0xd800 && c <= 0xdfff) {
        i = surrogateEnd(topic, i, c)
        if (i === -1) return BAD_UTF8
      }
    } else if (c === 43 || c === 35) return WILDCARD_IN_NAME
    else if (c === 0) return NUL
  }
  if (len > SAFE_LENGTH && utf8Length(topic) > 65535) return TOO_LONG
  return OK
}

function validateFilter(filter: string): ValidationResult {
  const len = filter.length
  for (let i = 0; i < len; i++) {
    const c = filter.charCodeAt(i)
    if (c > 43) {
      if (c >= 0xd800 && c <= 0xdfff) {
        i = surrogateEnd(filter, i, c)
        if (i === -1) return BAD_UTF8
      }
    } else if (c === 35 /* # */) {
      if (i !== len - 1 || (i > 0 && filter.charCodeAt(i - 1) !== 47)) return BAD_HASH
    } else if (c === 43 /* + */) {
      if ((i > 0 && filter.charCodeAt(i - 1) !== 47) || (i + 1 < len && filter.charCodeAt(i + 1) !== 47))
        return BAD_PLUS
    } else if (c === 0) return NUL
  }
  return OK
}

/** The prefix of an MQTT 5 shared subscription, `$share/{ShareName}/{filter}` (§4.8.2). */
export const SHARE_PREFIX = '$share/'

/**
 * Validates a topic filter (a SUBSCRIBE/UNSUBSCRIBE entry) per MQTT 5.0 §4.7: non-empty, `#` only as
 * a whole last level, `+` only as a whole level, no U+0000, well-formed, at most 65,535 UTF-8 bytes;
 * and, unless `options.shared` is false, `$share/{ShareName}/{filter}` per §4.8.2. Never throws.
 *
 * @example
 * validateTopicFilter('Dog/+/toys/#') // { ok: true }
 * validateTopicFilter('Dog/#/toys')   // { ok: false, code: 'TOPIC_INVALID_MULTI_LEVEL_WILDCARD', ... }
 */
export function validateTopicFilter(filter: string, options?: ValidateFilterOptions): ValidationResult {
  const len = filter.length
  if (len === 0) return EMPTY
  if (options?.shared !== false && filter.startsWith(SHARE_PREFIX)) {
    const slash = filter.indexOf('/', SHARE_PREFIX.length)
    const groupEnd = slash === -1 ? len : slash
    if (groupEnd === SHARE_PREFIX.length) return BAD_SHARE_NAME
    for (let i = SHARE_PREFIX.length; i < groupEnd; i++) {
      const c = filter.charCodeAt(i)
      if (c === 43 || c === 35) return BAD_SHARE_NAME
    }
    if (slash === -1 || slash === len - 1) return BAD_SHARED_FILTER
    // The ShareName holds no wildcard, so the whole string validates like a filter from here.
  }
  const result = validateFilter(filter)
  if (!result.ok) return result
  if (len > SAFE_LENGTH && utf8Length(filter) > 65535) return TOO_LONG
  return OK
}

/**
 * Throwing form of {@link validateTopicName}, for code that is not on a hot path.
 * @throws {TopicError}
 * @example
 * assertTopicName(packet.topic)
 */
export function assertTopicName(topic: string): void {
  const result = validateTopicName(topic)
  if (!result.ok)
    throw new TopicError(result.code, topic, `invalid topic name ${JSON.stringify(topic)}: ${result.reason}`)
}

/**
 * Throwing form of {@link validateTopicFilter}.
 * @throws {TopicError}
 * @example
 * assertTopicFilter('a/+/c')
 */
export function assertTopicFilter(filter: string, options?: ValidateFilterOptions): void {
  const result = validateTopicFilter(filter, options)
  if (!result.ok)
    throw new TopicError(
      result.code,
      filter,
      `invalid topic filter ${JSON.stringify(filter)}: ${result.reason}`,
    )
}
