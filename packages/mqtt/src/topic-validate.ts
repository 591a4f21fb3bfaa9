import { validateTopicFilter, validateTopicName } from '@proj/topic-matcher'

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

/** A topic name for PUBLISH and wills: not empty, no wildcards [MQTT-3.3.2-2] [MQTT-4.7.3-1]. */
export function isValidTopicName(topic: string): boolean {
  return validateTopicName(topic).ok
}

/** A topic filter for SUBSCRIBE/UNSUBSCRIBE [MQTT-4.7.1-2] [MQTT-4.7.1-3] [MQTT-4.7.3-1]. */
export function isValidTopicFilter(filter: string, shared: boolean): boolean {
  return validateTopicFilter(filter, { shared }).ok
}

/** A string field from mqtt-packet (already decoded): reject U+0000 and replacement characters of invalid UTF-8. */
export function isValidUtf8String(s: string): boolean {
  return !s.includes('\u0000') && !s.includes('\uFFFD')
}
