import type { ReplicatedTransaction, Replicator, Store } from '../src/index.js'

/**
 * A total order in memory: every submitted transaction gets the next position and is applied to every
 * attached store in that order (what @proj/cluster does with a JetStream stream). `hold` keeps
 * submissions back so a test can reorder concurrent writes.
 */
export function memoryStream(local = (table: string) => table.startsWith('local')) {
  const entries: ReplicatedTransaction[] = []
  const stores: Store[] = []
  let held: ReplicatedTransaction[] | undefined
  const deliver = (txn: ReplicatedTransaction) => {
    entries.push(txn)
    const position = entries.length
    for (const store of stores) void store.applyReplicated(txn.data, position)
  }
  const replicator: Replicator = {
    replicates: (table) => !local(table),
    submit: async (txn) => {
      if (held) held.push(txn)
      else deliver(txn)
    },
  }
  return {
    replicator,
    entries,
    attach(store: Store) {
      stores.push(store)
      entries.forEach((txn, i) => void store.applyReplicated(txn.data, i + 1))
    },
    hold() {
      held = []
    },
    /** Delivers what was held, in the given order of indexes. */
    release(order?: number[]) {
      const h = held ?? []
      held = undefined
      for (const i of order ?? h.map((_, i) => i)) deliver(h[i]!)
    },
  }
}

/** A replicator that commits here, with a manual "publish": outbox entries to the stream, in order. */
export function localStream(options: Partial<Replicator> = {}) {
  const stream = memoryStream()
  let told = 0
  const replicator: Replicator = {
    ...stream.replicator,
    commitsLocally: true,
    maxBytes: 10_000,
    outboxed: () => told++,
    ...options,
  }
  return {
    ...stream,
    replicator,
    told: () => told,
    /** Publishes `store`'s outbox to the stream (applied on every attached store), then removes it. */
    async publish(store: Store) {
      const entries = store.outbox!.read(100)
      for (const e of entries) await stream.replicator.submit(e)
      await store.outbox!.remove(entries.map((e) => e.key))
      return entries.length
    },
  }
}
