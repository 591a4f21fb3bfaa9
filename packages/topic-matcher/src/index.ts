/**
 * @proj/topic-matcher: MQTT topic and filter validation and a fast subscription trie.
 * @packageDocumentation
 */

export type { TopicErrorCode } from './errors.js'
export { TopicError } from './errors.js'
export { filterCovers, filtersOverlap } from './filter-relations.js'
export { matchesFilter } from './match.js'
export type { SharedSubscription } from './shared-subscription.js'
export { isSharedFilter, parseSharedSubscription } from './shared-subscription.js'
export { createSubscriptionTrie, SubscriptionTrie } from './subscription-trie.js'
export type {
  QoS,
  SharedGroupMatch,
  SubscriberMatch,
  Subscription,
  SubscriptionOptions,
  TrieMatch,
} from './subscription-types.js'
export type { ValidateFilterOptions, ValidationResult } from './validate.js'
export { assertTopicFilter, assertTopicName, validateTopicFilter, validateTopicName } from './validate.js'
