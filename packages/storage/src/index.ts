export type { HybridClockOptions } from './clock.js'
export { createHybridClock } from './clock.js'
export type { CommitListener, CommitStats } from './commit-stats.js'
export type { StorageErrorCode } from './errors.js'
export {
  ConflictError,
  InvalidKeyError,
  InvalidValueError,
  KeyTooLongError,
  LogTruncatedError,
  StaleWriteError,
  StorageError,
  StoreClosedError,
  VersionMismatchError,
} from './errors.js'
export { FORMAT_VERSION, isValidKey } from './record-format.js'
export { openStore } from './store.js'
export type {
  ChangeEvent,
  ChangeFilter,
  ChangeListener,
  ChangeLog,
  ChangeType,
  HybridClock,
  Key,
  LogReadOptions,
  OpenStoreOptions,
  OutboxEntry,
  RangeOptions,
  RecordEntry,
  RecordVersion,
  ReplicatedTransaction,
  ReplicationOutbox,
  Replicator,
  Store,
  Table,
  TableOptions,
  Timestamp,
  TransactionOptions,
  WriteKind,
  WriteListener,
  WriteOptions,
  WriteTransaction,
} from './types.js'
