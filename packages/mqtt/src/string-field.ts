/**
 * Outbound UTF-8 string fields (MQTT 3.1.1 section 1.5.3, MQTT 5 section 1.5.4) carry a two-byte
 * length: at most 65,535 bytes. Strings we compose (reason strings naming the client's topics) can
 * be longer, and an encoder handed one writes a corrupt packet or throws.
 */
const MAX_STRING_BYTES = 65535

/**
 * `s` shortened to at most `maxBytes` bytes of UTF-8, cut at a character boundary (never half a
 * character, never half a surrogate pair); `s` itself when it fits.
 */
export function truncateUtf8(s: string, maxBytes = MAX_STRING_BYTES): string {
  // Each UTF-16 code unit takes at most 3 bytes: short strings need no counting.
  if (s.length * 3 <= maxBytes) return s
  const bytes = Buffer.from(s, 'utf8')
  if (bytes.length <= maxBytes) return s
  let end = maxBytes
  // Step back over continuation bytes (10xxxxxx) to the start of the character that does not fit.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--
  return bytes.toString('utf8', 0, end)
}
