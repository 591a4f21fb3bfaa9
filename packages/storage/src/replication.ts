import { Packr } from 'msgpackr'
import type { CursorIndex } from './cursor-index.js'
import { POSITION_FACTOR } from './cursors.js'
import { StorageError } from './errors.js'
import { decodeValue, TYPES } from './record-format.js'
import type { ChangeEvent, Key, ReplicatedTransaction, Replicator, WriteOptions } from './types.js'
import { Group, MESSAGE, Op, PATCH, PUT, type WriteTarget } from './write-plan.js'

/**
 * Wire format of one replicated transaction (msgpack):
 * `[version, originNodeId, txnId, ops]`, each op
 * `[kind, table, logged, id, bytes, meta, user, timestamp, nodeId, ifVersion, originOnly, explicit]`
 * (`explicit`: the caller gave the timestamp, so a stale write fails rather than being skipped).
 * `bytes` is what the op carries locally (put: the record with an unstamped header; patch: the packed
 * patch; message: the packed value); `originOnly` ops (tables the replicator does not replicate, written
 * in the same transaction) apply on the origin only, atomically with the rest.
 */
const WIRE_VERSION = 1
const packr = new Packr({ useRecords: false, mapsAsObjects: true })

type WireOp = [
  kind: number,
  table: string,
  logged: boolean,
  id: Key,
  bytes: Buffer | null,
  meta: Buffer | null,
  user: string | null,
  timestamp: number,
  nodeId: number,
  ifVersion: number | null,
  originOnly: boolean,
  explicit: boolean,
]
type Wire = [
  version: number,
  origin: number,
  txnId: string,
  ops: WireOp[],
  committedBy?: string,
  provisional?: Buffer,
]

/**
 * `ack: local`: the cursor the origin gave the transaction's first logged event (0: none), 8 bytes at the
 * very end of the packed wire, written once the commit numbered its events (see CursorIndex).
 */
const PROVISIONAL_BYTES = 8
/** How many such transactions `originOf` knows: those whose events are still on their way to listeners. */
const RECENT_LIMIT = 4096

/** What replication needs of the store. */
export interface ReplicationHost {
  readonly nodeId: number
  /** This store's identity (kept in its meta database): which local commits come back as its own. */
  readonly instance: string
  /** Adds a transaction to the outbox, inside the LMDB transaction that commits its writes. */
  readonly appendOutbox: ((txn: ReplicatedTransaction) => void) | undefined
  readonly clock: { now(): number; observe(ts: number): void }
  /** The table to apply a replicated write to (opened with `logged` when new). */
  target(name: string, logged: boolean): WriteTarget
  /** Queues a group for the write queue. */
  enqueue(group: Group): void
  /** Where local commits' events went in the stream (see CursorIndex). */
  readonly index: CursorIndex
}

interface Waiter {
  ops: Op[]
  /** One plain table write (resolves with its event) rather than a transaction (resolves with events). */
  single: boolean
  resolve: (value: unknown) => void
  reject: (error: unknown) => void
  /** The bound on the wait for the apply (cleared when it applies). */
  timer?: NodeJS.Timeout
}

/**
 * Origin and apply sides of replication: stamps a node's writes and hands them to the replicator,
 * resolves the writers when their transaction comes back from the stream, and applies every
 * replicated transaction (its own and other nodes') in stream order through the write queue.
 */
export class Replication {
  readonly #waiting = new Map<string, Waiter>()
  /** Recently applied transactions another node committed ahead of the stream: position → [origin, first]. */
  readonly #recent = new Map<number, [origin: number, first: number]>()
  /** Highest position queued for apply (messages at or below it are duplicates). */
  #queued: number
  /** Highest position applied and durable. */
  position: number

  constructor(
    private readonly host: ReplicationHost,
    readonly replicator: Replicator,
    position: number,
  ) {
    this.#queued = this.position = position
  }

  replicates(ops: readonly Op[]): boolean {
    for (const op of ops) if (this.replicator.replicates(op.table.name)) return true
    return false
  }

  /** Stamps the ops, submits them as one transaction, resolves when applied here (or fails). */
  submit(ops: Op[], single: boolean): Promise<unknown> {
    const { host } = this
    let logged = 0
    for (const op of ops) {
      if (op.table.logged) logged++
      const ifVersion = op.options?.ifVersion
      // a conditional write is stamped after the version it expects, so it is never also stale
      if (ifVersion !== undefined && ifVersion > 0) host.clock.observe(ifVersion)
      op.stamped = op.options?.timestamp ?? host.clock.now()
      op.stampedNode = op.options?.nodeId ?? host.nodeId
      op.skipStale = op.options?.timestamp === undefined
    }
    if (logged > POSITION_FACTOR)
      return Promise.reject(
        new StorageError(
          'STORAGE_INVALID_ARGUMENT',
          `a replicated transaction holds at most ${POSITION_FACTOR} logged writes`,
        ),
      )
    const txnId = `${host.nodeId.toString(36)}.${ops[0]!.stamped!.toString(36)}`
    const local = this.replicator.commitsLocally === true && host.appendOutbox !== undefined
    const wire: Wire = [
      WIRE_VERSION,
      host.nodeId,
      txnId,
      ops.map((op) => [
        op.kind,
        op.table.name,
        op.table.logged,
        op.id,
        op.bytes ?? null,
        op.meta ?? null,
        op.options?.user ?? null,
        op.stamped!,
        op.stampedNode!,
        local ? null : (op.options?.ifVersion ?? null),
        !this.replicator.replicates(op.table.name),
        !local && !op.skipStale,
      ]),
    ]
    if (local) wire.push(host.instance, Buffer.alloc(PROVISIONAL_BYTES))
    const data = packr.pack(wire)
    const writes = ops.map((op) => ({ table: op.table.name, id: op.id, type: TYPES[op.kind]! }))
    if (local) return this.#commitLocally(ops, single, { id: txnId, data, writes })
    return new Promise((resolve, reject) => {
      this.#waiting.set(txnId, { ops, single, resolve, reject })
      this.replicator
        .submit({ id: txnId, data, writes })
        .then((answer) => {
          const waits = answer?.wait !== false || ops.some((op) => op.options?.ifVersion !== undefined)
          if (waits) {
            if (answer?.applyWithinMs !== undefined) this.#bound(txnId, ops, answer.applyWithinMs)
            return
          }
          if (this.#waiting.get(txnId)?.ops !== ops) return // already applied
          this.#waiting.delete(txnId)
          for (const op of ops) {
            op.event.timestamp = op.stamped!
            op.event.nodeId = op.stampedNode!
          }
          resolve(single ? ops[0]!.event : ops.map((op) => op.event))
        })
        .catch((error) => {
          // never acknowledged; if the stream kept it after all, it applies later without a waiter
          if (this.#waiting.get(txnId)?.ops === ops) this.#waiting.delete(txnId)
          reject(error)
        })
    })
  }

  /**
   * `ack: local`: commits the ops here at once (last writer wins on their stamps, conditions checked
   * against this node's state) with the outbox entry in the same LMDB transaction; the writers resolve
   * once that is durable, and the replicator is told there is something to publish.
   */
  #commitLocally(ops: Op[], single: boolean, txn: ReplicatedTransaction): Promise<unknown> {
    const max = this.replicator.maxBytes
    if (max !== undefined && txn.data.byteLength > max)
      return Promise.reject(
        new StorageError(
          'STORAGE_INVALID_VALUE',
          `the write is ${txn.data.byteLength} bytes, more than the replicator carries (${max})`,
        ),
      )
    const refused = this.replicator.refusal?.()
    if (refused !== undefined) return Promise.reject(refused)
    const group = new Group()
    group.ops.push(...ops)
    group.provisional = true
    group.alsoWrite = () => {
      // the events are numbered now: the wire says where the first went, and this node notes it pending
      let first = 0
      let count = 0
      for (const op of ops) {
        if (op.log === undefined) continue
        if (count++ === 0) first = op.result!.cursor
      }
      const data = txn.data as Buffer
      data.writeDoubleBE(first, data.byteLength - PROVISIONAL_BYTES)
      if (count > 0) this.host.index.record(this.host.nodeId, first, 0, count)
      this.host.appendOutbox!(txn)
    }
    return new Promise((resolve, reject) => {
      group.resolve = (events: ChangeEvent[]) => {
        const op = ops[0]!
        resolve(single ? (op.result ?? (op.skipped ? op.event : undefined)) : events)
        this.replicator.outboxed?.()
      }
      group.reject = reject
      this.host.enqueue(group)
    })
  }

  /**
   * Fails the writers of `txnId` with `STORAGE_UNAVAILABLE` when their transaction has not come back
   * within `ms`: the replicator has it (it may still apply later, like another node's write), so the
   * outcome is unknown, never acknowledged falsely; and no writer waits without a bound.
   */
  #bound(txnId: string, ops: Op[], ms: number): void {
    const waiter = this.#waiting.get(txnId)
    if (waiter?.ops !== ops) return // applied (or failed) already
    waiter.timer = setTimeout(() => {
      if (this.#waiting.get(txnId) !== waiter) return
      this.#waiting.delete(txnId)
      waiter.reject(
        new StorageError(
          'STORAGE_UNAVAILABLE',
          `the write was not applied on this node within ${ms} ms (transaction ${txnId}); its outcome is unknown`,
        ),
      )
    }, ms)
    waiter.timer.unref?.()
  }

  /** Applies the transaction at stream `position`; resolves once durable (also when a condition failed). */
  apply(data: Uint8Array, position: number): Promise<void> {
    if (!(Number.isSafeInteger(position) && position > 0))
      return Promise.reject(
        new StorageError('STORAGE_INVALID_ARGUMENT', 'position must be a positive integer'),
      )
    if (position <= this.#queued) return Promise.resolve()
    let wire: Wire
    try {
      // as a Buffer: msgpackr hands out binary fields as views of its input, and the write path needs Buffers
      const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)
      wire = packr.unpack(bytes) as Wire
      if (!Array.isArray(wire) || wire[0] !== WIRE_VERSION) throw new Error(`wire version ${wire?.[0]}`)
    } catch (error) {
      return Promise.reject(
        new StorageError('STORAGE_INVALID_ARGUMENT', `not a replicated transaction: ${error}`, {
          cause: error,
        }),
      )
    }
    this.#queued = position
    const [, origin, txnId, wireOps, committedBy, provisional] = wire
    const own = origin === this.host.nodeId
    // committed here already (ack: local): only the position is stored
    const committedHere = committedBy !== undefined && committedBy === this.host.instance
    const waiter = own ? this.#waiting.get(txnId) : undefined
    if (waiter !== undefined) {
      this.#waiting.delete(txnId)
      clearTimeout(waiter.timer)
    }
    const group = new Group()
    group.position = position
    const first = provisional?.byteLength === PROVISIONAL_BYTES ? provisional.readDoubleBE(0) : 0
    if (first > 0) {
      group.alsoWrite = () => this.#indexed(origin, first, position, committedHere, wireOps)
      if (!own) this.#remember(position, origin, first)
    }
    if (waiter !== undefined) group.ops.push(...waiter.ops)
    else if (!committedHere) {
      for (const w of wireOps) {
        if (w[10] && !own) continue
        group.ops.push(this.#decodeOp(w))
      }
    }
    return new Promise((resolve, reject) => {
      group.resolve = (events: ChangeEvent[]) => {
        this.#applied(position)
        resolve()
        if (waiter === undefined) return
        if (!waiter.single) waiter.resolve(events)
        else {
          const op = waiter.ops[0]!
          waiter.resolve(op.result ?? (op.skipped ? op.event : undefined))
        }
      }
      group.reject = (error: unknown) => {
        if (group.failed === undefined) {
          // the LMDB transaction failed: nothing applied, not even the position
          reject(error)
        } else {
          this.#applied(position)
          resolve()
        }
        waiter?.reject(error)
      }
      this.host.enqueue(group)
    })
  }

  /** A locally committed transaction reached the stream at `position`: where its origin numbered its events. */
  #indexed(origin: number, first: number, position: number, own: boolean, wireOps: WireOp[]): void {
    const { index } = this.host
    // the origin counted the events it logged; another node counts those it was sent
    let count = own ? (index.count(origin, first) ?? 0) : 0
    if (!own) for (const w of wireOps) if (w[2] && !w[10]) count++
    if (count > 0) index.record(origin, first, position, count)
  }

  #remember(position: number, origin: number, first: number): void {
    this.#recent.set(position, [origin, first])
    if (this.#recent.size > RECENT_LIMIT)
      for (const oldest of this.#recent.keys()) {
        this.#recent.delete(oldest)
        break
      }
  }

  /**
   * For an event applied here lately (its live change event) from a transaction another node committed
   * ahead of the stream: that node, and the cursor it gave the event.
   */
  originOf(cursor: number): { node: number; cursor: number } | undefined {
    const recent = this.#recent.get(Math.floor(cursor / POSITION_FACTOR))
    return recent === undefined
      ? undefined
      : { node: recent[0], cursor: recent[1] + (cursor % POSITION_FACTOR) }
  }

  #applied(position: number): void {
    if (position > this.position) this.position = position
  }

  /** Rejects every writer still waiting for its transaction (the store closes). */
  abandon(error: unknown): void {
    for (const waiter of this.#waiting.values()) {
      clearTimeout(waiter.timer)
      waiter.reject(error)
    }
    this.#waiting.clear()
  }

  #decodeOp(w: WireOp): Op {
    const [kind, tableName, logged, id, bytes, meta, user, timestamp, nodeId, ifVersion, , explicit] = w
    const table = this.host.target(tableName, logged)
    const options: WriteOptions = explicit ? { timestamp, nodeId } : {}
    if (user !== null) options.user = user
    if (ifVersion !== null) options.ifVersion = ifVersion
    const metaValue = meta !== null ? (decodeValue(meta) as Record<string, unknown>) : undefined
    if (metaValue !== undefined) options.meta = metaValue
    let value: unknown
    let patch: object | undefined
    if (kind === PUT) value = (decodeValue(bytes!) as unknown[])[2]
    else if (kind === MESSAGE) value = decodeValue(bytes!)
    else if (kind === PATCH) patch = decodeValue(bytes!) as object
    const event: ChangeEvent = {
      type: TYPES[kind]!,
      table: tableName,
      id,
      value,
      patch,
      timestamp: 0,
      cursor: 0,
      nodeId: 0,
      user: options.user,
      meta: metaValue,
    }
    const op = new Op(kind, table, id, bytes ?? undefined, meta ?? undefined, options, event)
    op.stamped = timestamp
    op.stampedNode = nodeId
    op.skipStale = !explicit
    return op
  }
}
