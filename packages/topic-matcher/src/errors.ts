/** Stable codes for invalid topic names and filters (MQTT 5.0 §4.7, §4.8.2). */
export type TopicErrorCode =
  /** [MQTT-4.7.3-1] a topic name or filter must be at least one character long */
  | 'TOPIC_EMPTY'
  /** [MQTT-4.7.3-3] at most 65,535 bytes of UTF-8 */
  | 'TOPIC_TOO_LONG'
  /** [MQTT-4.7.3-2] no U+0000 */
  | 'TOPIC_NULL_CHARACTER'
  /** [MQTT-1.5.4-1] a lone UTF-16 surrogate has no UTF-8 encoding */
  | 'TOPIC_INVALID_UTF8'
  /** [MQTT-4.7.0-1] `+` and `#` are not allowed in a topic name */
  | 'TOPIC_WILDCARD_IN_NAME'
  /** [MQTT-4.7.1-1] `#` must be a whole level and the last character */
  | 'TOPIC_INVALID_MULTI_LEVEL_WILDCARD'
  /** [MQTT-4.7.1-2] `+` must occupy a whole level */
  | 'TOPIC_INVALID_SINGLE_LEVEL_WILDCARD'
  /** [MQTT-4.8.2-1] [MQTT-4.8.2-2] a ShareName is non-empty and holds no `/`, `+` or `#` */
  | 'TOPIC_INVALID_SHARE_NAME'
  /** [MQTT-4.8.2-2] `$share/{ShareName}` must be followed by `/` and a topic filter */
  | 'TOPIC_INVALID_SHARED_FILTER'

/**
 * Thrown by the throwing APIs (`SubscriptionTrie#add`, `assertTopicName`, `assertTopicFilter`);
 * the hot-path validators return a `ValidationResult` with the same `code` instead.
 *
 * @example
 * try { trie.add('a/#/b', client, { qos: 0 }) } catch (err) {
 *   if (err instanceof TopicError) suback(0x8f) // Topic Filter invalid
 * }
 */
export class TopicError extends Error {
  override readonly name = 'TopicError'
  readonly code: TopicErrorCode
  /** The offending topic name or filter. */
  readonly topic: string

  constructor(code: TopicErrorCode, topic: string, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
    this.topic = topic
  }
}
