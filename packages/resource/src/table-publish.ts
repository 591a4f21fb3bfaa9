import type { ChangeEvent, Key } from '@proj/storage'
import { toStored } from './own-keys.js'
import { PublishAttachment } from './publish-attachment.js'
import { CommittedPublish } from './publish-result.js'
import {
  dispatchMessage,
  type ResourceHost,
  type ResourceMessage,
  type ResourcePublishOptions,
} from './resource.js'
import { rethrow, storageMeta, toResourceError, writeOf } from './storage-writes.js'
import type { TableCore } from './table-core.js'
import type { PublishResult, RequestContext } from './types.js'

/**
 * A publish to a record of a table: retained with a payload is a put, retained and empty a delete,
 * anything else a message event (QoS 0 dispatched now, otherwise logged first). The publisher's bytes
 * travel with the write as a PublishAttachment when they describe what is stored.
 */
export class TablePublisher {
  readonly #t: TableCore
  readonly #host: ResourceHost

  constructor(t: TableCore, host: ResourceHost) {
    this.#t = t
    this.#host = host
  }

  publish(
    id: Key,
    message: ResourceMessage,
    ctx: RequestContext,
    options?: ResourcePublishOptions,
  ): Promise<PublishResult> {
    const t = this.#t
    const host = this.#host
    const atomic = options?.atomic
    if (!message.retain) {
      if (message.qos === 0 && !atomic?.length)
        return dispatchMessage(host, t, id, t.topicFor(id), message, ctx)
      const stored = toStored(message.value)
      const attachment = PublishAttachment.of(stored, message.payload, message.contentType)
      const meta = storageMeta(message, ctx)
      const user = ctx.user?.username
      if (t.indexes.size === 0 && !atomic?.length)
        return this.#single(t.table.message(id, stored, writeOf(user, meta, attachment)))
      // Serialized with writes to the record on indexed tables, so a topic's events keep their order.
      return t.indexes.serial(id, () =>
        this.#commit((txn) => txn.message(t.table, id, stored, writeOf(user, meta, attachment)), atomic),
      )
    }
    const meta = storageMeta(message, ctx)
    const user = ctx.user?.username
    const indexes = t.indexes
    // No early return when the record looks absent: a retained put published just before may not have
    // committed yet, and the store's delete of an absent record is a no-op anyway.
    if (message.payload?.length === 0) {
      const write = writeOf(user, meta)
      if (indexes.size === 0 && !atomic?.length) return this.#single(t.table.delete(id, write))
      if (indexes.size === 0) return this.#commit((txn) => txn.delete(t.table, id, write), atomic)
      return indexes.serial(id, () =>
        this.#commit((txn) => {
          txn.delete(t.table, id, write)
          indexes.write(txn, id, t.table.get(id), undefined)
        }, atomic),
      )
    }
    let value: unknown
    try {
      value = t.withPrimaryKey(id, message.value)
      t.validate(value)
    } catch (error) {
      return Promise.reject(error)
    }
    const stored = toStored(value)
    // The publisher's bytes stand for the record only when it is stored exactly as decoded from them.
    const write = writeOf(
      user,
      meta,
      value === message.value
        ? PublishAttachment.of(stored, message.payload, message.contentType)
        : new PublishAttachment(),
    )
    if (indexes.size === 0 && !atomic?.length) return this.#single(t.table.put(id, stored, write))
    if (indexes.size === 0) return this.#commit((txn) => txn.put(t.table, id, stored, write), atomic)
    return indexes.serial(id, () =>
      this.#commit((txn) => {
        txn.put(t.table, id, stored, write)
        indexes.write(txn, id, t.table.get(id), value)
      }, atomic),
    )
  }

  async #commit(
    write: Parameters<ResourceHost['commit']>[0],
    atomic: ResourcePublishOptions['atomic'],
  ): Promise<PublishResult> {
    let changes: ChangeEvent[]
    try {
      changes = await this.#host.commit(write, atomic)
    } catch (error) {
      throw toResourceError(error)
    }
    return this.#result(changes.find((c) => c.table === this.#t.table.name))
  }

  /** One storage write without a transaction group (nothing indexed, no state writes). */
  #single(write: Promise<ChangeEvent | undefined>): Promise<PublishResult> {
    return write.then(this.#result, rethrow)
  }

  readonly #result = (change: ChangeEvent | undefined): PublishResult =>
    change === undefined ? {} : new CommittedPublish(change, this.#host.toEvent)
}
