/**
 * @proj/cluster: several nodes on NATS JetStream. See README.md for the design.
 * @packageDocumentation
 */
export { ClusterUnavailableError } from './errors.js'
export type { ClusterNode, ClusterState } from './node.js'
export { joinCluster } from './node.js'
export type { AckMode, ClusterLog, ClusterOptions } from './options.js'
export { nodeIdOf, resolveOptions } from './options.js'
export { Relay } from './relay.js'
export type { SubjectKey, SubjectKind } from './subjects.js'
export { checkPrefix, keyTokens, recordSubject, subjectToken } from './subjects.js'
