import { isUtf8 } from 'node:buffer'
import { encode as encodeValue } from '@proj/codec'
import type { ChangeEvent, Key, Table as StorageTable, WriteTransaction } from '@proj/storage'
import { matchesFilter, validateTopicName } from '@proj/topic-matcher'
import { type EphemeralEntry, EphemeralTopics, isEphemeralTopic } from './ephemeral-topics.js'
import { ResourceError } from './errors.js'
import { decodeLoose, RuntimeEvent } from './event.js'
import { scanPrefix, splitAtWildcard } from './filter-prefix.js'
import { ListenedPublish, settleWith } from './listened-publish.js'
import { CommittedPublish } from './publish-result.js'
import { RESOLVED_EMPTY, Resource, type ResourceHost, type ResourceWriteOptions } from './resource.js'
import { rethrow, storageMeta, toResourceError, writeOf, writeOptions } from './storage-writes.js'
import type { TopicRecord } from './topic-record.js'
import type {
  EventMeta,
  PublishListener,
  PublishMessage,
  PublishResult,
  RecordResult,
  RequestContext,
  StateWrite,
  WriteResult,
} from './types.js'

/** Storage table of the built-in topics table (retained messages of topics no table claims). */
export const TOPICS_TABLE = '__topics'

/**
 * The built-in resource of every topic that no table claims: retained messages kept as the publisher's
 * bytes and content type, like any broker. The runtime falls back to it when the router finds no
 * resource, so a topic is served by the same route, check, delegate steps as a record; only the
 * permission rules differ (topic rules instead of table permissions, checked by the runtime).
 */
export class TopicsResource extends Resource {
  readonly table: StorageTable<TopicRecord>
  readonly #commit: (
    write: (txn: WriteTransaction) => void,
    atomic: readonly StateWrite[] | undefined,
  ) => Promise<ChangeEvent[]>
  readonly #claimed: (topic: string) => boolean
  readonly #listening: () => boolean
  readonly #dispatch: (event: RuntimeEvent) => void
  /** Retained messages of `$SYS` topics: in memory, never stored nor logged (see ephemeral-topics.ts). */
  readonly #ephemeral = new EphemeralTopics()

  constructor(
    host: ResourceHost,
    table: StorageTable<TopicRecord>,
    /** Whether a table claims `topic` (its events are that table's, not ours). */
    claimed: (topic: string) => boolean,
    /** Whether anyone subscribes at all (a QoS 0 message to nobody builds no event). */
    listening: () => boolean,
    /** Hands an unlogged event to the topic subscriptions. */
    dispatch: (event: RuntimeEvent) => void,
  ) {
    super({ host, path: '', name: TOPICS_TABLE })
    this.table = table
    this.#commit = (write, atomic) => host.commit(write, atomic)
    this.#claimed = claimed
    this.#listening = listening
    this.#dispatch = dispatch
  }

  override topicFor(id: Key): string {
    return String(id)
  }

  override has(id: Key): boolean {
    if (isEphemeralTopic(String(id))) return this.#ephemeral.get(String(id)) !== undefined
    return this.table.get(id) !== undefined
  }

  override async get(topic: Key): Promise<RecordResult | undefined> {
    const entry = isEphemeralTopic(String(topic))
      ? this.#ephemeralEntry(String(topic))
      : this.table.getEntry(topic)
    if (!entry) return undefined
    const record = entry.value
    const value = record.payload ? decodeLoose(record.payload, record.contentType) : record.value
    const result: RecordResult = { id: topic, value, version: entry.version }
    const contentType = record.contentType ?? (value instanceof Uint8Array ? bytesType(value) : undefined)
    if (contentType !== undefined) result.contentType = contentType
    return result
  }

  override async put(
    topic: Key,
    value: unknown,
    ctx: RequestContext,
    options?: ResourceWriteOptions,
  ): Promise<WriteResult> {
    assertTopicName(String(topic))
    const record: TopicRecord = {
      payload: value instanceof Uint8Array ? value : encodeValue(value, 'application/json'),
    }
    if (isEphemeralTopic(String(topic))) {
      const write = writeOptions(ctx, options?.ifVersion)
      const { created, version } = this.#putEphemeral(String(topic), record, write.ifVersion, write.meta, ctx)
      return { id: topic, version, created }
    }
    const created = this.table.get(topic) === undefined
    const change = await this.table.put(topic, record, writeOptions(ctx, options?.ifVersion)).catch(rethrow)
    return { id: topic, version: change.timestamp, created }
  }

  override async patch(topic: Key): Promise<WriteResult> {
    throw new ResourceError('METHOD_NOT_ALLOWED', `${String(topic)} is a topic, which cannot be patched`)
  }

  override async delete(topic: Key, ctx: RequestContext, options?: ResourceWriteOptions): Promise<boolean> {
    if (isEphemeralTopic(String(topic))) {
      const write = writeOptions(ctx, options?.ifVersion)
      return this.#deleteEphemeral(String(topic), write.ifVersion, write.meta, ctx)
    }
    if (options?.ifVersion === undefined && this.table.get(topic) === undefined) return false
    const change = await this.table.delete(topic, writeOptions(ctx, options?.ifVersion)).catch(rethrow)
    return change !== undefined
  }

  /**
   * A publish of the publisher's bytes (never decoded): QoS 0 without retain goes straight to
   * subscribers; anything else is one write to the topics table (retained: put, or delete when empty;
   * otherwise a logged message), alone or with the caller's state writes in one transaction. The
   * runtime validated the topic and checked permissions.
   */
  publishBytes(
    topic: string,
    message: PublishMessage,
    ctx: RequestContext,
    atomic: readonly StateWrite[] | undefined,
  ): Promise<PublishResult> {
    const retain = message.retain
    const single = atomic === undefined || atomic.length === 0
    if (!retain && message.qos === 0 && single) {
      if (!this.#listening()) return RESOLVED_EMPTY
      const host = this.host
      const event = new RuntimeEvent(
        'message',
        topic,
        '',
        topic,
        host.now(),
        0,
        ctx.user?.username,
        false,
        message.meta,
      )
      event.origin = ctx.clientId
      this.#dispatch(event.setPayload(message.payload, message.contentType))
      return RESOLVED_EMPTY
    }
    const record = topicRecordOf(message, retain)
    const write = writeOf(ctx.user?.username, storageMeta(message, ctx))
    if (retain && isEphemeralTopic(topic)) {
      const meta = write.meta
      const apply = (): PublishResult => {
        if (message.payload.length === 0) this.#deleteEphemeral(topic, undefined, meta, ctx)
        else this.#putEphemeral(topic, record, undefined, meta, ctx)
        return {}
      }
      if (single) return Promise.resolve(apply())
      // The caller's state writes (a QoS 2 packet id) still commit; keeping the value again is harmless.
      return this.#commit(() => {}, atomic).then(apply, (error: unknown) => {
        throw toResourceError(error)
      })
    }
    const table = this.table
    if (retain && message.payload.length === 0) {
      // not skipped when the topic looks empty: a retained put just before it may still be queued
      if (single) return table.delete(topic, write).then(this.#result, rethrow)
      return this.commitOne((txn) => txn.delete(table, topic, write), atomic)
    }
    // One write without state writes: a plain storage write (no transaction group), same batching.
    if (single)
      return (retain ? table.put(topic, record, write) : table.message(topic, record, write)).then(
        this.#result,
        rethrow,
      )
    if (retain) return this.commitOne((txn) => txn.put(table, topic, record, write), atomic)
    return this.commitOne((txn) => txn.message(table, topic, record, write), atomic)
  }

  /**
   * `publishBytes` without caller state writes, told to `listener`: a stored publish is one storage
   * write whose options are its listener (see listened-publish.ts); QoS 0 and `$SYS` go the promise way.
   */
  publishWith(
    topic: string,
    message: PublishMessage,
    ctx: RequestContext,
    listener: PublishListener,
    onError: (error: unknown) => void,
  ): void {
    const retain = message.retain
    if ((!retain && message.qos === 0) || (retain && isEphemeralTopic(topic))) {
      settleWith(this.publishBytes(topic, message, ctx, undefined), listener, onError)
      return
    }
    const write = new ListenedPublish(storageMeta(message, ctx), ctx.user?.username, listener)
    // not skipped when the topic looks empty: a retained put just before it may still be queued
    if (retain && message.payload.length === 0) {
      this.table.submit('delete', topic, undefined, write, write)
      return
    }
    const record = topicRecordOf(message, retain)
    this.table.submit(retain ? 'put' : 'message', topic, record, write, write)
  }

  #ephemeralEntry(topic: string): { value: TopicRecord; version: number } | undefined {
    const entry = this.#ephemeral.get(topic)
    return entry && { value: entry.record, version: entry.version }
  }

  /** Keeps a retained message of a `$SYS` topic and hands its event to the subscribers (unlogged, cursor 0). */
  #putEphemeral(
    topic: string,
    record: TopicRecord,
    ifVersion: number | undefined,
    meta: Record<string, unknown> | undefined,
    ctx: RequestContext,
  ): { created: boolean; version: number } {
    const existing = this.#ephemeral.get(topic)
    assertVersion(topic, existing, ifVersion)
    const version = this.host.now()
    this.#ephemeral.set(topic, { record, version })
    if (this.#listening()) {
      const event = new RuntimeEvent('put', topic, '', topic, version, 0, ctx.user?.username, false, meta)
      event.origin = ctx.clientId
      this.#dispatch(event.setPayload(record.payload!, record.contentType))
    }
    return { created: existing === undefined, version }
  }

  #deleteEphemeral(
    topic: string,
    ifVersion: number | undefined,
    meta: Record<string, unknown> | undefined,
    ctx: RequestContext,
  ): boolean {
    assertVersion(topic, this.#ephemeral.get(topic), ifVersion)
    if (!this.#ephemeral.delete(topic)) return false
    if (this.#listening()) {
      const event = new RuntimeEvent(
        'delete',
        topic,
        '',
        topic,
        this.host.now(),
        0,
        ctx.user?.username,
        false,
        meta,
      )
      event.origin = ctx.clientId
      this.#dispatch(event)
    }
    return true
  }

  /** Logs a message event of a resource without a table (its `publish` through `host.logMessage`). */
  logMessage(
    topic: string,
    message: { payload?: Uint8Array; contentType?: string; value?: unknown; qos: number; meta?: EventMeta },
    ctx: RequestContext,
    atomic: readonly StateWrite[] | undefined,
  ): Promise<PublishResult> {
    const record: TopicRecord = message.payload
      ? message.contentType !== undefined
        ? { payload: message.payload, contentType: message.contentType }
        : { payload: message.payload }
      : { value: message.value }
    const write = writeOf(ctx.user?.username, storageMeta(message, ctx))
    return this.commitOne((txn) => txn.message(this.table, topic, record, write), atomic)
  }

  /** Commits `write` with the state writes; the result is this table's committed change. */
  async commitOne(
    write: (txn: WriteTransaction) => void,
    atomic: readonly StateWrite[] | undefined,
  ): Promise<PublishResult> {
    let changes: ChangeEvent[]
    try {
      changes = await this.#commit(write, atomic)
    } catch (error) {
      throw toResourceError(error)
    }
    return this.#result(changes.find((c) => c.table === TOPICS_TABLE))
  }

  /** A committed write's PublishResult; its event is built only if someone reads it. */
  readonly #result = (change: ChangeEvent | undefined): PublishResult =>
    change === undefined ? {} : new CommittedPublish(change, this.host.toEvent)

  /** Retained messages of unclaimed topics matching `filter`. */
  override *snapshot(_idFilter: string, filter: string): Iterable<RuntimeEvent> {
    // Only a filter whose first level is `$SYS` matches a `$SYS` topic [MQTT-4.7.2-1]; records an
    // older version stored there are out of date, so they are not served.
    if (isEphemeralTopic(filter)) {
      for (const [topic, entry] of this.#ephemeral.matching(filter))
        yield topicEvent(topic, entry.record, entry.version)
      return
    }
    const split = splitAtWildcard(filter)
    if (split.firstWild === -1) {
      const entry = this.table.getEntry(filter)
      if (entry) yield topicEvent(filter, entry.value, entry.version)
      return
    }
    const prefix = scanPrefix(split)
    for (const entry of this.table.entries(prefix ? { prefix } : undefined)) {
      const topic = String(entry.id)
      if (!matchesFilter(filter, topic) || this.#claimed(topic)) continue
      yield topicEvent(topic, entry.value, entry.version)
    }
  }
}

/** CONFLICT when `ifVersion` is given and is not the entry's version (0: the topic must not exist). */
function assertVersion(
  topic: string,
  entry: EphemeralEntry | undefined,
  ifVersion: number | undefined,
): void {
  if (ifVersion === undefined || (entry?.version ?? 0) === ifVersion) return
  throw new ResourceError('CONFLICT', `${topic} is not at version ${ifVersion}`)
}

/** INVALID unless `topic` is a valid topic name. */
export function assertTopicName(topic: string): void {
  const valid = validateTopicName(topic)
  if (!valid.ok) throw new ResourceError('INVALID', `invalid topic ${JSON.stringify(topic)}: ${valid.reason}`)
}

/** The meta of a retained message without properties, by its QoS: one frozen object each, not one per event. */
const QOS_META: readonly EventMeta[] = ([0, 1, 2] as const).map((qos) => Object.freeze({ qos }))

function topicEvent(topic: string, record: TopicRecord, version: number): RuntimeEvent {
  let meta: EventMeta | undefined
  if (record.properties !== undefined) {
    meta = { properties: record.properties }
    if (record.qos !== undefined) meta.qos = record.qos
  } else if (record.qos !== undefined) meta = QOS_META[record.qos] ?? { qos: record.qos }
  const event = new RuntimeEvent('put', topic, '', topic, version, 0, undefined, true, meta)
  if (record.payload) event.setPayload(record.payload, record.contentType)
  else event.value = record.value
  return event
}

/** The media type of undeclared raw bytes on a plain topic: text stays text, anything else is octet-stream. */
function bytesType(bytes: Uint8Array): string {
  return isUtf8(bytes) ? 'text/plain; charset=utf-8' : 'application/octet-stream'
}

/** What a topic stores for a message; a retained one keeps its properties (MQTT 5 section 3.3.1.3) and QoS for later subscribers. */
function topicRecordOf(message: PublishMessage, retain: boolean): TopicRecord {
  const record: TopicRecord =
    message.contentType !== undefined
      ? { payload: message.payload, contentType: message.contentType }
      : { payload: message.payload }
  if (retain) {
    if (message.meta?.properties !== undefined) record.properties = message.meta.properties
    record.qos = message.qos
  }
  return record
}
