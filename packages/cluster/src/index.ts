/**
 * @proj/cluster: several nodes on NATS JetStream. See README.md for the design.
 * @packageDocumentation
 */
export type { SubjectKey, SubjectKind } from './subjects.js'
export { checkPrefix, keyTokens, recordSubject, subjectToken } from './subjects.js'
