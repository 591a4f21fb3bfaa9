/**
 * Byte-level validation of topic names and filters (MQTT 3.1.1 sections 1.5.3 and 4.7, MQTT 5 1.5.4 and 4.7).
 * Hot-path validators return a result instead of throwing.
 */

const fatalDecoder = new TextDecoder('utf-8', { fatal: true })

/**
 * Decodes a UTF-8 string field, or returns undefined when it is not well-formed UTF-8 or holds U+0000
 * [MQTT-1.5.3-1] [MQTT-1.5.3-2] [MQTT-1.5.4-1] [MQTT-1.5.4-2]. ASCII (the common case) skips the decoder.
 */
export function decodeUtf8(buf: Buffer, start: number, end: number): string | undefined {
  for (let i = start; i < end; i++) {
    const b = buf[i]!
    if (b === 0) return undefined
    if (b >= 0x80) {
      try {
        // TextDecoder's fatal mode rejects overlong forms and encoded surrogates (U+D800..U+DFFF).
        const s = fatalDecoder.decode(buf.subarray(start, end))
        return s.includes('\u0000') ? undefined : s
      } catch {
        return undefined
      }
    }
  }
  return buf.toString('latin1', start, end)
}

/** A topic name for PUBLISH: not empty, no wildcards [MQTT-3.3.2-2] [MQTT-4.7.3-1]. */
export function isValidTopicName(topic: string): boolean {
  if (topic.length === 0 || topic.length > 65535) return false
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i)
    if (c === 0x2b /* + */ || c === 0x23 /* # */ || c === 0) return false
  }
  return true
}

/**
 * A topic filter for SUBSCRIBE/UNSUBSCRIBE: `#` only as the last level and alone in it [MQTT-4.7.1-2],
 * `+` alone in its level [MQTT-4.7.1-3], not empty [MQTT-4.7.3-1].
 */
export function isValidTopicFilter(filter: string): boolean {
  if (filter.length === 0 || filter.length > 65535) return false
  const n = filter.length
  for (let i = 0; i < n; i++) {
    const c = filter.charCodeAt(i)
    if (c === 0) return false
    if (c === 0x23) {
      if (i !== n - 1) return false
      if (i > 0 && filter.charCodeAt(i - 1) !== 0x2f) return false
    } else if (c === 0x2b) {
      if (i > 0 && filter.charCodeAt(i - 1) !== 0x2f) return false
      if (i < n - 1 && filter.charCodeAt(i + 1) !== 0x2f) return false
    }
  }
  return true
}

/** True for `$share/{group}/{filter}` (MQTT 5 section 4.8.2). */
export function isSharedFilter(filter: string): boolean {
  return filter.startsWith('$share/')
}

/** A string field from mqtt-packet (already decoded): reject U+0000 and replacement characters of invalid UTF-8. */
export function isValidUtf8String(s: string): boolean {
  return !s.includes('\u0000') && !s.includes('\uFFFD')
}
