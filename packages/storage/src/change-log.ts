import type { CursorIndex } from './cursor-index.js'
import { type Cursors, POSITION_FACTOR } from './cursors.js'
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
    private readonly index: CursorIndex,
    /** This node's id, and whether it commits writes ahead of the stream (`ack: local`). */
    private readonly self: { nodeId: number; local: boolean },
    /** See ChangeLog.originOf. */
    readonly originOf: (cursor: number) => { node: number; cursor: number } | undefined = () => undefined,
  ) {}

  get issuer(): number | undefined {
    return this.self.local ? this.self.nodeId : undefined
  }

  readSince(options: LogReadOptions = {}): Iterable<ChangeEvent> {
    if (this.store.closed) throw new StoreClosedError()
    const { after, tables, limit, issuer } = options
    if (after !== undefined && after < this.cursors.droppedUpTo)
      throw new LogTruncatedError(after, this.firstCursor)
    const only = tables === undefined ? undefined : new Set(tables)
    const events =
      after === undefined || issuer === undefined || issuer === this.self.nodeId
        ? this.read(after, only, this.cursors.last)
        : this.readIssued(after, issuer, only, this.cursors.last)
    return limit === undefined ? events : take(events, limit)
  }

  /**
   * After a cursor another node handed out: that node's own events it had delivered under provisional
   * cursors at or below `after` are left out where the stream put them later, and this node's own events
   * numbered at or below `after` that the other node had not (the stream orders them after `after`, or
   * does not hold them yet) come first.
   */
  private *readIssued(
    after: number,
    issuer: number,
    tables: Set<string> | undefined,
    last: number,
  ): Generator<ChangeEvent, void, undefined> {
    const delivered = this.index.deliveredLater(issuer, after)
    const ownLater = this.self.local ? this.index.ownLater(this.self.nodeId, after) : []
    for (const [first, count] of ownLater) {
      for (let cursor = first; cursor < first + count && cursor <= after && cursor <= last; cursor++) {
        const entry = this.logDb.get(cursor) as StoredLogEntry | undefined
        if (entry === undefined || (tables !== undefined && !tables.has(entry[0][1]))) continue
        yield this.decode(cursor, entry)
      }
    }
    for (const event of this.read(after, tables, last)) {
      const upTo = delivered.get(Math.floor(event.cursor / POSITION_FACTOR))
      if (upTo !== undefined && event.cursor % POSITION_FACTOR <= upTo) continue
      yield event
    }
  }

  private decode(cursor: number, entry: StoredLogEntry): ChangeEvent {
    return refersToRecord(entry) ? this.fromRecord(cursor, entry) : decodeLogEntry(cursor, entry)
  }

  private *read(
    after: number | undefined,
    tables: Set<string> | undefined,
    last: number,
  ): Generator<ChangeEvent, void, undefined> {
    // only durable events the feed has already delivered: a reader that catches up from the log and
    // then subscribes to the feed sees no gap and no duplicate
    const range = this.logDb.getRange({
      start: after === undefined ? undefined : after + 1,
      end: last + 1,
    })
    for (const { key, value } of range) {
      if (tables !== undefined && !tables.has(value[0][1])) continue
      yield this.decode(key, value)
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

/** The first `limit` items (none for a limit of 0 or less); stops the source as soon as they are out. */
function* take<T>(items: Iterable<T>, limit: number): Generator<T, void, undefined> {
  if (limit <= 0) return
  for (const item of items) {
    yield item
    if (--limit <= 0) return
  }
}
