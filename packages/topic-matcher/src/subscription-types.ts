/** MQTT quality of service. */
export type QoS = 0 | 1 | 2

/** Options of one subscription, as given to {@link SubscriptionTrie.add}. */
export interface SubscriptionOptions<O = undefined> {
  qos: QoS
  /** MQTT 5 Subscription Identifier (1..268,435,455). */
  subscriptionId?: number
  /** Anything else the caller keeps per subscription (no-local, retain-as-published, ...). */
  data?: O
}

/** One stored subscription. Objects are owned by the trie: read them, do not mutate them. */
export interface Subscription<S, O = undefined> {
  /** The filter as given to `add` (with its `$share/{group}/` prefix for a shared subscription). */
  readonly filter: string
  readonly subscriber: S
  readonly qos: QoS
  readonly subscriptionId: number | undefined
  readonly data: O | undefined
  /** ShareName of a shared subscription, else undefined. */
  readonly group: string | undefined
}

/** One subscriber that a topic reaches through one or more of its (non-shared) subscriptions. */
export interface SubscriberMatch<S, O = undefined> {
  subscriber: S
  /** Highest QoS of the matching subscriptions [MQTT-3.3.4-2]. */
  qos: QoS
  /** Subscription Identifiers of all matching subscriptions that have one [MQTT-3.3.4-4]. */
  subscriptionIds: readonly number[]
  /** Every matching subscription of this subscriber (for per-subscription options in `data`). */
  subscriptions: readonly Subscription<S, O>[]
}

/** A shared-subscription group the topic reaches: the caller delivers to one of `members`. */
export interface SharedGroupMatch<S, O = undefined> {
  group: string
  /** The filter after `$share/{group}/`. */
  filter: string
  members: readonly Subscription<S, O>[]
}

/** Result of {@link SubscriptionTrie.match}. */
export interface TrieMatch<S, O = undefined> {
  /** Each subscriber once, in no particular order. */
  subscribers: SubscriberMatch<S, O>[]
  /** Each matching (group, filter) once; empty when there are no shared subscriptions. */
  shared: SharedGroupMatch<S, O>[]
}
