import type { RuntimeEvent, SharedDelivery } from '@proj/resource'
import type { Store, Table } from '@proj/storage'
import type { Heartbeats } from './heartbeats.js'
import type { ClusterLog } from './options.js'

/** Replicated (unlogged) table of shared-subscription membership: key [group, filter, node]. */
const MEMBERS_TABLE = '__cluster.shares'
/** A node not heard from for this long no longer takes its turn in a group. */
const ALIVE_MS = 3500

/**
 * Shared subscriptions across nodes (the runtime's `shared` option). Which nodes have members of a
 * group is a replicated state record per node, so at each stream position every node knows the same
 * member nodes; a logged event at stream sequence `s` belongs to member node `s mod n` (by name) and
 * only that node hands it to one of its members. QoS 0 messages (no sequence) go by a hash of their
 * topic and timestamp. A node not heard from (core NATS heartbeat, every second) for 3.5 s loses its
 * turn, so a dead node's share goes to the others.
 */
export class SharedGroups implements SharedDelivery {
  #table: Table<number> | undefined

  constructor(
    private readonly heartbeats: Heartbeats,
    private readonly nodeName: string,
    private readonly log: ClusterLog,
  ) {}

  /** Starts with the node's store: forgets this node's memberships left by a previous run. */
  start(store: Store): void {
    const table = store.table<number>(MEMBERS_TABLE, { log: false })
    this.#table = table
    for (const { id } of table.entries())
      if (Array.isArray(id) && id[2] === this.nodeName) this.#write(id as string[], false)
  }

  members(group: string, filter: string, present: boolean): void {
    this.#write([group, filter, this.nodeName], present)
  }

  delivers(group: string, filter: string, event: RuntimeEvent): boolean {
    const table = this.#table
    if (table === undefined) return true
    const nodes: string[] = []
    for (const { id } of table.entries({ prefix: group })) {
      if (!Array.isArray(id) || id[1] !== filter) continue
      const node = id[2] as string
      if (this.#alive(node)) nodes.push(node)
    }
    // nobody's membership applied yet (this node's own is on its way): deliver rather than lose it
    if (nodes.length === 0) return true
    nodes.sort()
    const turn =
      event.cursor > 0 ? Math.floor(event.cursor / 1000) : hash(`${event.topic}\0${event.timestamp}`)
    return nodes[turn % nodes.length] === this.nodeName
  }

  #alive(node: string): boolean {
    // a node just started has not heard the others yet: they count until they had time to say so
    return this.heartbeats.heard(node, ALIVE_MS)
  }

  #write(key: string[], present: boolean): void {
    const table = this.#table
    if (table === undefined) return
    const write = present ? table.put(key, 1) : table.delete(key)
    write.catch((err: unknown) =>
      this.log.warn(
        { err, group: key[0], filter: key[1] },
        'cluster: shared-subscription membership not written',
      ),
    )
  }
}

/** FNV-1a, 32 bits: the same number on every node for the same text. */
function hash(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}
