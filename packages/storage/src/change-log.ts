import type { Cursors } from './cursors.js'
import type { Db } from './databases.js'
import { LogTruncatedError, StoreClosedError } from './errors.js'
import { refersToRecord, valueFromRecord } from './log-values.js'
import { decodeLogEntry, type StoredLogEntry } from './record-format.js'
import type { ChangeEvent, ChangeLog, LogReadOptions } from './types.js'

/** What the change log needs of its store. */
export interface LogHost {
  readonly closed: boolean
  compact(): Promise<number>
}

/** Reads the change log in cursor order, up to the last durable cursor. */
export class ChangeLogImpl implements ChangeLog {
  private readonly dbs = new Map<string, Db>()

  constructor(
    private readonly store: LogHost,
    private readonly logDb: Db,
    private readonly cursors: Cursors,
    /** A table's database by name: entries that refer to their record take the value from it. */
    private readonly tableDb: (name: string) => Db,
  ) {}

  readSince(options: LogReadOptions = {}): Iterable<ChangeEvent> {
    if (this.store.closed) throw new StoreClosedError()
    const { after, tables, limit } = options
    if (after !== undefined && after < this.cursors.droppedUpTo)
      throw new LogTruncatedError(after, this.firstCursor)
    return this.read(after, tables === undefined ? undefined : new Set(tables), limit, this.cursors.last)
  }

  private *read(
    after: number | undefined,
    tables: Set<string> | undefined,
    limit: number | undefined,
    last: number,
  ): Generator<ChangeEvent, void, undefined> {
    let remaining = limit ?? Number.POSITIVE_INFINITY
    if (remaining <= 0) return
    // only durable events the feed has already delivered: a reader that catches up from the log and
    // then subscribes to the feed sees no gap and no duplicate
    const range = this.logDb.getRange({
      start: after === undefined ? undefined : after + 1,
      end: last + 1,
    })
    for (const { key, value } of range) {
      if (tables !== undefined && !tables.has(value[0][1])) continue
      yield refersToRecord(value) ? this.fromRecord(key, value) : decodeLogEntry(key, value)
      if (--remaining <= 0) return
    }
  }

  /** An entry whose value is its record's (see log-values.ts). */
  private fromRecord(cursor: number, entry: StoredLogEntry): ChangeEvent {
    const header = entry[0]
    let db = this.dbs.get(header[1])
    if (db === undefined) this.dbs.set(header[1], (db = this.tableDb(header[1])))
    const value = valueFromRecord(cursor, db.get(header[2]))
    if (value !== undefined) return decodeLogEntry(cursor, entry, value)
    // The range reads a snapshot; the record was replaced since, and the write that replaced it gave
    // the entry its value in the same transaction: the entry as it is now has it.
    const now = this.logDb.get(cursor) as StoredLogEntry | undefined
    if (now !== undefined && !refersToRecord(now)) return decodeLogEntry(cursor, now)
    if (now === undefined) throw new LogTruncatedError(cursor - 1, this.firstCursor)
    // unreachable while every replacing write inlines the value: fail loudly rather than lose it
    throw new Error(`change log entry ${cursor} refers to a record version that is gone`)
  }

  get lastCursor(): number {
    return this.cursors.last
  }

  get visibleCursor(): number {
    if (this.store.closed) throw new StoreClosedError()
    // A commit is readable before its sync ends and before the feed hears it: the log's own last key.
    for (const key of this.logDb.getKeys({ reverse: true, limit: 1 }))
      return Math.max(key as number, this.cursors.last)
    return this.cursors.last
  }

  get firstCursor(): number {
    if (this.store.closed) throw new StoreClosedError()
    for (const key of this.logDb.getKeys({ limit: 1 })) return key
    return this.cursors.droppedUpTo > 0 ? this.cursors.last + 1 : 0
  }

  compact(): Promise<number> {
    return this.store.compact()
  }
}
