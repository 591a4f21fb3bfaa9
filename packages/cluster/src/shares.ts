import type { NatsConnection, Subscription } from '@nats-io/transport-node'
import type { RuntimeEvent, SharedDelivery } from '@proj/resource'
import type { Store, Table } from '@proj/storage'
import type { ClusterLog } from './options.js'

/** Replicated (unlogged) table of shared-subscription membership: key [group, filter, node]. */
const MEMBERS_TABLE = '__cluster.shares'
/** A node not heard from for this long no longer takes its turn in a group. */
const ALIVE_MS = 3500
const HEARTBEAT_MS = 1000

const encoder = new TextEncoder()
const decoder = new TextDecoder()

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
  readonly #seen = new Map<string, number>()
  readonly #started = Date.now()
  #timer: NodeJS.Timeout | undefined
  #sub: Subscription | undefined

  constructor(
    private readonly nats: NatsConnection,
    private readonly prefix: string,
    private readonly nodeName: string,
    private readonly log: ClusterLog,
  ) {}

  /** Starts with the node's store: forgets this node's memberships left by a previous run, heartbeats. */
  start(store: Store): void {
    const table = store.table<number>(MEMBERS_TABLE, { log: false })
    this.#table = table
    for (const { id } of table.entries())
      if (Array.isArray(id) && id[2] === this.nodeName) this.#write(id as string[], false)
    const subject = `${this.prefix}.ctl.alive`
    this.#sub = this.nats.subscribe(subject, {
      callback: (error, msg) => {
        if (!error) this.#seen.set(decoder.decode(msg.data), Date.now())
      },
    })
    const beat = () => {
      if (!this.nats.isClosed()) this.nats.publish(subject, encoder.encode(this.nodeName))
    }
    beat()
    this.#timer = setInterval(beat, HEARTBEAT_MS)
    this.#timer.unref?.()
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
    if (node === this.nodeName) return true
    const seen = this.#seen.get(node)
    const now = Date.now()
    // a node just started has not heard the others yet: they count until they had time to say so
    if (seen === undefined) return now - this.#started < ALIVE_MS
    return now - seen < ALIVE_MS
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

  close(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#sub?.unsubscribe()
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
