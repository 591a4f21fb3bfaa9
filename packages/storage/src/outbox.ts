import type { Db } from './databases.js'
import type { OutboxEntry, ReplicatedTransaction, ReplicationOutbox } from './types.js'

export const OUTBOX_DB = '__outbox'

/**
 * The `ack: local` outbox: replicated transactions committed on this node and not yet in the cluster's
 * stream, keyed by a growing number (commit order). An entry is written in the LMDB transaction that
 * commits the writes it carries, so a crash never keeps one without the other.
 */
export class Outbox implements ReplicationOutbox {
  #last: number

  constructor(private readonly db: Db) {
    this.#last = 0
    for (const key of db.getKeys({ reverse: true, limit: 1 })) this.#last = key as number
  }

  /** @internal Inside the write transaction that commits `txn`'s writes. */
  append(txn: ReplicatedTransaction): void {
    this.db.putSync(++this.#last, [txn.id, txn.data, txn.writes])
  }

  read(limit: number, after?: number): OutboxEntry[] {
    const entries: OutboxEntry[] = []
    const range = after === undefined ? { limit } : { start: after + 1, limit }
    for (const { key, value } of this.db.getRange(range)) {
      const [id, data, writes] = value as [string, Uint8Array, OutboxEntry['writes']]
      entries.push({ key: key as number, id, data, writes })
    }
    return entries
  }

  async remove(keys: readonly number[]): Promise<void> {
    await this.db.transaction(() => {
      for (const key of keys) this.db.removeSync(key)
    })
  }

  get lastKey(): number {
    return this.#last
  }

  get size(): number {
    return this.db.getCount()
  }
}
