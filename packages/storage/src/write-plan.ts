import type { Clock } from './clock.js'
import type { Cursors } from './cursors.js'
import type { Db } from './databases.js'
import { ConflictError, InvalidValueError, StaleWriteError, StorageError } from './errors.js'
import { referringEntry, withCursor } from './log-values.js'
import {
  checkKey,
  decodeValue,
  encodeLogEntry,
  encodeRecord,
  encodeTombstone,
  encodeValue,
  isPlainObject,
  keyString,
  RECORD_HEADER,
  type Scratch,
  type StoredRecord,
  stampRecord,
  TYPES,
  VALUE_IN_RECORD,
} from './record-format.js'
import type { ChangeEvent, Key, WriteListener, WriteOptions } from './types.js'

/** Write kinds, as stored in log entries (the index into TYPES). */
export const PUT = 0
export const PATCH = 1
export const DELETE = 2
export const MESSAGE = 3

export const MAX_NODE_ID = 0xffffffff

type Resolve = (value: any) => void
type Reject = (error: unknown) => void

/** What a write needs of the table it goes to. */
export interface WriteTarget {
  readonly name: string
  readonly db: Db
  readonly logged: boolean
  /** Events carry the value each write replaced. */
  readonly previous: boolean
  /** Its records may hold log entries' values (see VALUE_IN_RECORD): logged, or was before. */
  readonly referred: boolean
}

/** One write, from the call that made it to its commit. */
export class Op {
  /** What goes into the table db (stamped record or tombstone), when anything does. */
  record: Buffer | undefined = undefined
  remove = false
  log: Buffer | undefined = undefined
  /**
   * The record this write replaces holds the value of the log entry at this cursor: the entry gets the
   * value (`inlineValue`) before the record is replaced, in the same transaction.
   */
  inlineCursor: number | undefined = undefined
  inlineValue: Buffer | undefined = undefined
  result: ChangeEvent | undefined = undefined
  failed: unknown = undefined
  resolve: Resolve | undefined = undefined
  reject: Reject | undefined = undefined
  /** Told instead of resolve/reject (`Table.submit`). */
  listener: WriteListener | undefined = undefined
  /** Replication: the origin's stamp, applied as an explicit timestamp (last writer wins). */
  stamped: number | undefined = undefined
  stampedNode: number | undefined = undefined
  /** Replication: a write that lost to a newer one is skipped (`skipped`), not an error. */
  skipStale = false
  skipped = false

  constructor(
    readonly kind: number,
    readonly table: WriteTarget,
    readonly id: Key,
    /** put: record buffer with an unstamped header; patch: the packed patch; message: the packed value. */
    readonly bytes: Buffer | undefined,
    readonly meta: Buffer | undefined,
    readonly options: WriteOptions | undefined,
    readonly event: ChangeEvent,
  ) {}

  /**
   * Runs inside the write transaction: checks conditions against the stored record (or what the
   * transaction's earlier writes left in `overlay`), stamps the write with the clock and the next
   * cursor, merges a patch, and encodes what it stores; writes nothing. Returns false for a write that
   * has nothing to do (deleting an absent record). With `scratch`, the log entry and a record that refers
   * to it are built there: the caller writes them before planning anything else.
   */
  plan(stamp: Stamp, overlay: Overlay | undefined, scratch?: WriteScratch): boolean {
    const { kind, table, options, event } = this
    this.record = undefined
    this.remove = false
    this.log = undefined
    this.inlineCursor = undefined
    this.inlineValue = undefined
    this.result = undefined
    this.skipped = false
    const explicit = this.stamped ?? options?.timestamp
    let timestamp: number
    const nodeId = this.stampedNode ?? options?.nodeId ?? stamp.nodeId
    if (explicit !== undefined) {
      timestamp = explicit
      stamp.clock.observe(explicit)
    } else timestamp = stamp.clock.now()

    let current: StoredRecord | undefined
    const previous = table.previous
    // what an earlier write of this transaction left of the record (never a record referred to by a log entry)
    const staged = overlay?.get(`${table.name}\u0000${keyString(this.id)}`)
    if (
      kind === PATCH ||
      kind === DELETE ||
      previous ||
      (kind === PUT && (explicit !== undefined || options?.ifVersion !== undefined))
    ) {
      current =
        staged !== undefined ? (staged ?? undefined) : (table.db.get(this.id) as StoredRecord | undefined)
      // a message leaves the record as it is
      if (current !== undefined && current.length === 4 && kind !== MESSAGE) this.findReferringEntry(table)
      if (explicit !== undefined && current !== undefined) {
        const stored = current[0]
        if (!(explicit > stored || (explicit === stored && nodeId > current[1]))) {
          if (!this.skipStale) throw new StaleWriteError(explicit, stored)
          // a conditional write that lost: its condition no longer holds
          if (options?.ifVersion !== undefined)
            throw new ConflictError(options.ifVersion, current.length >= 3 ? stored : 0)
          event.timestamp = explicit
          event.nodeId = nodeId
          this.skipped = true
          return false
        }
      }
      if (options?.ifVersion !== undefined) {
        const actual = current !== undefined && current.length >= 3 ? current[0] : 0
        if (actual !== options.ifVersion) throw new ConflictError(options.ifVersion, actual)
      }
    } else if (kind === PUT && table.referred && staged === undefined) this.findReferringEntry(table)

    let valueBytes: Buffer | undefined
    /** A put or patch: the value is the record's after its header. */
    let valueInRecord = false
    let patchBytes: Buffer | undefined
    let next: StoredRecord | null | undefined
    switch (kind) {
      case PUT:
        this.record = stampRecord(this.bytes!, timestamp, nodeId)
        valueInRecord = true
        if (overlay !== undefined) next = [timestamp, nodeId, event.value]
        break
      case PATCH: {
        const base = current !== undefined && current.length >= 3 ? current[2] : undefined
        if (base !== undefined && !isPlainObject(base))
          throw new InvalidValueError('cannot patch a value that is not a plain object')
        const merged: Record<string, unknown> = base === undefined ? {} : { ...(base as object) }
        const patch = decodeValue(this.bytes!) as Record<string, unknown>
        for (const name in patch) {
          const v = patch[name]
          if (v === undefined) delete merged[name]
          else merged[name] = v
        }
        this.record = stampRecord(encodeRecord(merged), timestamp, nodeId)
        valueInRecord = true
        patchBytes = this.bytes
        event.value = merged
        next = [timestamp, nodeId, merged]
        break
      }
      case DELETE:
        // a replicated delete of an absent record does nothing (its stamp is not a caller's timestamp)
        if ((current === undefined || current.length < 3) && options?.timestamp === undefined) return false
        if (table.logged) {
          this.record = encodeTombstone(timestamp, nodeId)
          next = [timestamp, nodeId]
        } else {
          this.remove = true
          next = null
        }
        break
      default:
        valueBytes = this.bytes
    }
    event.timestamp = timestamp
    event.nodeId = nodeId
    let previousBytes: Buffer | undefined
    if (previous) {
      const live = current !== undefined && current.length >= 3
      event.previous = live ? { value: current![2] } : null
      previousBytes = live ? encodePrevious(current![2]) : NO_PREVIOUS
    }
    if (table.logged) {
      const cursor = (event.cursor = stamp.cursors.next())
      // the value is kept once, in the record (see VALUE_IN_RECORD); inside a transaction inline, as a
      // later write of the same transaction would have to rewrite an entry not yet written
      const inRecord = overlay === undefined && valueInRecord
      if (inRecord) this.record = withCursor(this.record!, cursor, scratch?.record)
      else if (valueInRecord) valueBytes = this.record!.subarray(RECORD_HEADER)
      this.log = encodeLogEntry(
        inRecord ? kind | VALUE_IN_RECORD : kind,
        table.name,
        this.id,
        timestamp,
        nodeId,
        options?.user,
        inRecord ? undefined : valueBytes,
        patchBytes,
        this.meta,
        previousBytes,
        scratch?.log,
      )
    }
    if (overlay !== undefined && next !== undefined)
      overlay.set(`${table.name}\u0000${keyString(this.id)}`, next)
    this.result = event
    return true
  }

  /** The stored record (not one staged by this transaction) holds a log entry's value: note that entry. */
  private findReferringEntry(table: WriteTarget): void {
    // raw bytes, so the entry gets exactly the value bytes the record holds
    const referring = referringEntry(table.db.getBinaryFast(this.id) as Buffer | undefined)
    if (referring === undefined) return
    this.inlineCursor = referring.cursor
    this.inlineValue = referring.value
  }
}

/** A log entry's previous record: `[value]`, or `[]` when there was none. */
const NO_PREVIOUS = Buffer.from([0x90])

function encodePrevious(value: unknown): Buffer {
  const bytes = encodeValue(value)
  const out = Buffer.allocUnsafe(bytes.length + 1)
  out[0] = 0x91
  bytes.copy(out, 1)
  return out
}

/** Reused buffers for a write's log entry and record (see Scratch). */
export interface WriteScratch {
  readonly log: Scratch
  readonly record: Scratch
}

/** The writes of one `store.transaction()`: all commit or none does. */
export class Group {
  readonly ops: Op[] = []
  /** Replication: the stream position this group was applied from (stored with it, sets its cursors). */
  position: number | undefined = undefined
  /** Written in the same LMDB transaction when the group's writes are (the `ack: local` outbox entry). */
  alsoWrite: (() => void) | undefined = undefined
  /** Committed on this node ahead of the stream (`ack: local`): its cursors stay below the next position's. */
  provisional = false
  readonly events: ChangeEvent[] = []
  failed: unknown = undefined
  resolve: Resolve | undefined = undefined
  reject: Reject | undefined = undefined
}

/** Within a transaction, what its earlier writes left of each record (null: removed), by table and id. */
export type Overlay = Map<string, StoredRecord | null>

/** What stamping a write needs: the clock, this node's id and the log's cursors. */
export interface Stamp {
  readonly clock: Clock
  readonly nodeId: number
  readonly cursors: Cursors
}

/** Validates and encodes at call time, so a bad value fails its own call and later mutation is harmless. */
export function makeOp(
  kind: number,
  table: WriteTarget,
  id: Key,
  value: unknown,
  options?: WriteOptions,
): Op {
  checkKey(id)
  let bytes: Buffer | undefined
  if (kind === PUT) bytes = encodeRecord(value)
  else if (kind === MESSAGE) bytes = encodeValue(value)
  else if (kind === PATCH) {
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      throw new InvalidValueError('a patch must be a plain object')
    bytes = encodeValue(value)
  }
  if (options !== undefined) checkWriteOptions(options)
  const meta = options?.meta !== undefined && table.logged ? encodeMeta(options.meta) : undefined
  const event: ChangeEvent = {
    type: TYPES[kind]!,
    table: table.name,
    id,
    value: kind === PUT || kind === MESSAGE ? value : undefined,
    patch: kind === PATCH ? (value as object) : undefined,
    timestamp: 0,
    cursor: 0,
    nodeId: 0,
    user: options?.user,
    meta: options?.meta,
    attachment: options?.attachment,
  }
  return new Op(kind, table, id, bytes, meta, options, event)
}

/** Bytes of frozen metas of primitives (a broker's meta per client, the same for every message). */
const frozenMetas = new WeakMap<object, Buffer>()

/** A write's meta, encoded; one that cannot change (frozen, primitives only) is encoded once. */
function encodeMeta(meta: Record<string, unknown>): Buffer {
  if (!Object.isFrozen(meta)) return encodeValue(meta)
  let bytes = frozenMetas.get(meta)
  if (bytes !== undefined) return bytes
  bytes = encodeValue(meta)
  for (const key in meta) {
    const v = meta[key]
    if (v !== null && (typeof v === 'object' || typeof v === 'function')) return bytes
  }
  // a copy: encodeValue's bytes are a view of a shared slab
  bytes = Buffer.from(bytes)
  frozenMetas.set(meta, bytes)
  return bytes
}

function checkWriteOptions(options: WriteOptions): void {
  const { timestamp, nodeId, ifVersion } = options
  if (
    timestamp !== undefined &&
    !(typeof timestamp === 'number' && Number.isFinite(timestamp) && timestamp > 0)
  )
    throw new StorageError('STORAGE_INVALID_ARGUMENT', 'timestamp must be a positive finite number')
  if (nodeId !== undefined && !(Number.isInteger(nodeId) && nodeId >= 0 && nodeId <= MAX_NODE_ID))
    throw new StorageError('STORAGE_INVALID_ARGUMENT', `nodeId must be an integer in 0..${MAX_NODE_ID}`)
  if (ifVersion !== undefined && !(typeof ifVersion === 'number' && Number.isFinite(ifVersion)))
    throw new StorageError('STORAGE_INVALID_ARGUMENT', 'ifVersion must be a finite number')
}
