/** What the topics table stores per topic: the publisher's bytes and declared type (or a value). */
export interface TopicRecord {
  payload?: Uint8Array
  contentType?: string
  value?: unknown
  /** MQTT 5 PUBLISH properties of a retained message (user properties, expiry...), sent with it on subscribe. */
  properties?: Record<string, unknown>
  /** The QoS it was published with: a new subscriber receives min(this, granted) (MQTT 5 section 3.8.4). */
  qos?: 0 | 1 | 2
}
