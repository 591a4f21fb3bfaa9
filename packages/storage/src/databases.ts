import type { Database, RootDatabase } from 'lmdb'

/** A named database of the environment. lmdb-js types keys as mutable arrays; ours are readonly, checked by checkKey. */
export type Db = Database<any, any>

export const META_DB = '__meta'
export const LOG_DB = '__log'
export const TOMBSTONE_DB = '__tombstones'
/** A table's database is named after it, behind this prefix (so no table can be named like the ones above). */
export const TABLE_PREFIX = 't/'

/** The environment and its internal databases, as opened once by the store. */
export interface Databases {
  readonly env: RootDatabase
  /** Format version, node id, clock/cursor high-water marks, known tables, truncation point. */
  readonly metaDb: Db
  /** The change log, keyed by cursor. */
  readonly logDb: Db
  /** Tombstones by `[timestamp, cursor]` → `[table, id]`, so compaction finds expired ones in time order. */
  readonly tombstoneDb: Db
}
