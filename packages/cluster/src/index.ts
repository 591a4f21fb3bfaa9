/**
 * @proj/cluster: several nodes on NATS JetStream. See README.md for the design.
 * @packageDocumentation
 */
export { ClusterUnavailableError } from './errors.js'
export type { ClusterNode, ClusterState } from './node.js'
export { joinCluster } from './node.js'
export type { AckMode, ClusterLog, ClusterOptions } from './options.js'
export { nodeIdOf, resolveOptions } from './options.js'
export type { ClientHolder, OwnershipNode } from './ownership.js'
export { ClientOwnership, ownerKey } from './ownership.js'
export { Relay } from './relay.js'
export { SharedGroups } from './shares.js'
export type { SubjectKey, SubjectKind } from './subjects.js'
export { checkPrefix, keyTokens, recordSubject, subjectToken } from './subjects.js'
