/** Stable error codes of @proj/storage; transports map them to HTTP statuses and MQTT reason codes. */
export type StorageErrorCode =
  | 'STORAGE_INVALID_VALUE'
  | 'STORAGE_INVALID_KEY'
  | 'STORAGE_KEY_TOO_LONG'
  | 'STORAGE_INVALID_ARGUMENT'
  | 'STORAGE_VERSION_MISMATCH'
  | 'STORAGE_CONFLICT'
  | 'STORAGE_STALE'
  | 'STORAGE_LOG_TRUNCATED'
  | 'STORAGE_CLOSED'
  | 'STORAGE_WRITE_FAILED'
  /** The replicator could not put the write in the cluster's order in time: never acknowledged. */
  | 'STORAGE_UNAVAILABLE'

/** Base class of every error this package throws or rejects with. */
export class StorageError extends Error {
  override name = 'StorageError'
  readonly code: StorageErrorCode
  constructor(code: StorageErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
  }
}

/** The value cannot be encoded (function, symbol, circular structure, out-of-range BigInt, undefined). */
export class InvalidValueError extends StorageError {
  override name = 'InvalidValueError'
  constructor(message: string, options?: ErrorOptions) {
    super('STORAGE_INVALID_VALUE', message, options)
  }
}

/** The key is not a non-empty string, a finite number or an array of those, or is too large for LMDB. */
export class InvalidKeyError extends StorageError {
  override name = 'InvalidKeyError'
  constructor(message: string, options?: ErrorOptions, code: StorageErrorCode = 'STORAGE_INVALID_KEY') {
    super(code, message, options)
  }
}

/**
 * The key is well-formed but longer than LMDB can store (`maxBytes` encoded): its own code, so that
 * transports can answer "too long" (HTTP 414, MQTT topic not accepted) rather than "malformed".
 */
export class KeyTooLongError extends InvalidKeyError {
  override name = 'KeyTooLongError'
  constructor(readonly maxBytes: number) {
    super(`key is longer than ${maxBytes} bytes`, undefined, 'STORAGE_KEY_TOO_LONG')
  }
}

/** The store on disk was written with an incompatible format version. */
export class VersionMismatchError extends StorageError {
  override name = 'VersionMismatchError'
  constructor(
    readonly path: string,
    readonly found: unknown,
    readonly expected: number,
  ) {
    super(
      'STORAGE_VERSION_MISMATCH',
      `store at ${path} has on-disk format version ${String(found)}, but this @proj/storage reads format version ${expected}; migrate or open it with a matching version`,
    )
  }
}

/** `ifVersion` did not match the stored version (optimistic concurrency failed). */
export class ConflictError extends StorageError {
  override name = 'ConflictError'
  constructor(
    readonly expected: number,
    readonly actual: number,
  ) {
    super('STORAGE_CONFLICT', `version conflict: expected version ${expected}, stored version is ${actual}`)
  }
}

/** A write with an explicit `timestamp` was not newer than the stored version (last writer wins). */
export class StaleWriteError extends StorageError {
  override name = 'StaleWriteError'
  constructor(
    readonly timestamp: number,
    readonly current: number,
  ) {
    super('STORAGE_STALE', `stale write: timestamp ${timestamp} is not newer than stored version ${current}`)
  }
}

/** The reader's cursor is older than what change-log retention kept: it fell behind. */
export class LogTruncatedError extends StorageError {
  override name = 'LogTruncatedError'
  constructor(
    readonly after: number,
    readonly firstCursor: number,
  ) {
    super(
      'STORAGE_LOG_TRUNCATED',
      `change log truncated: events after cursor ${after} were compacted away (oldest kept cursor is ${firstCursor}); resynchronise from current state`,
    )
  }
}

/** The store was closed. */
export class StoreClosedError extends StorageError {
  override name = 'StoreClosedError'
  constructor() {
    super('STORAGE_CLOSED', 'the store is closed')
  }
}
