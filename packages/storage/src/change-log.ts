import type { Cursors } from './cursors.js'
import type { Db } from './databases.js'
import { LogTruncatedError, StoreClosedError } from './errors.js'
import { decodeLogEntry } from './record-format.js'
import type { ChangeEvent, ChangeLog, LogReadOptions } from './types.js'

/** What the change log needs of its store. */
export interface LogHost {
  readonly closed: boolean
  compact(): Promise<number>
}

/** Reads the change log in cursor order, up to the last durable cursor. */
export class ChangeLogImpl implements ChangeLog {
  constructor(
    private readonly store: LogHost,
    private readonly logDb: Db,
    private readonly cursors: Cursors,
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
      yield decodeLogEntry(key, value)
      if (--remaining <= 0) return
    }
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
