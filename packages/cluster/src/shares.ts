import type { RuntimeEvent, SharedDelivery } from '@proj/resource'
import type { ChangeEvent, Store, Table } from '@proj/storage'
import { matchesFilter } from '@proj/topic-matcher'
import type { ClusterLog } from './options.js'

/**
 * Replicated table of shared-subscription membership: key [group, filter, node]. Logged, so that its
 * changes reach this module through the change feed in stream order, between the events they came
 * between (an unlogged table read at delivery time would show membership changes applied in the same
 * batch as a later event, and nodes batch differently).
 */
const MEMBERS_TABLE = '__cluster.shares'

const groupKey = (group: string, filter: string) => `${group}\0${filter}`

/** A QoS 0 message's delivering node per group (by group key), as its origin saw the groups. */
interface Assignment {
  /** This node published it (false: relayed in from its origin). */
  origin: boolean
  nodes: Map<string, string>
}

const NONE: Assignment = { origin: true, nodes: new Map() }

/**
 * Shared subscriptions across nodes (the runtime's `shared` option). Which nodes have members of a
 * group is a replicated record per node; every node follows those records in stream order, so at each
 * stream position every node knows the same member nodes, and a logged event at stream sequence `s`
 * belongs to member node `s mod n` (by name): only that node hands it to one of its members. A QoS 0
 * message has no sequence: its origin picks the node per group (by a hash of topic and timestamp, among
 * the member nodes it knows) and the relayed message carries that choice, so the nodes never judge it by
 * memberships they applied at different moments. Liveness plays no part (a node's
 * own judgement of who is alive differs from another's): a dead node's memberships are deleted, in
 * stream order, by the survivor that adopts its clients (`dropNode`).
 */
export class SharedGroups implements SharedDelivery {
  #table: Table<number> | undefined
  /** Member nodes per group and filter, sorted, as of the last membership change the feed delivered. */
  readonly #nodes = new Map<string, string[]>()
  /** This node's groups: written again if another node took this one for dead. */
  readonly #mine = new Map<string, [group: string, filter: string]>()
  #unsubscribe: (() => void) | undefined
  #closed = false
  readonly #assigned = new WeakMap<RuntimeEvent, Assignment>()

  constructor(
    private readonly nodeName: string,
    private readonly log: ClusterLog,
  ) {}

  /**
   * Starts with the node's store, before it applies the stream: loads the members, follows their
   * changes, and forgets this node's memberships left by a previous run.
   */
  start(store: Store): void {
    const table = store.table<number>(MEMBERS_TABLE)
    this.#table = table
    this.#unsubscribe = store.onChange((change) => this.#changed(change), { table: MEMBERS_TABLE })
    for (const { id } of table.entries()) this.#note(id, true)
    for (const { id } of table.entries())
      if (Array.isArray(id) && id[2] === this.nodeName) void this.#write(id as string[], false)
  }

  /**
   * This node's first member of a group came, or its last left: its membership record is written (or
   * deleted). Resolves once that write is in the stream (or failed, logged): a member's SUBACK waits for
   * it, so every message published after the SUBACK comes after the membership in stream order.
   */
  members(group: string, filter: string, present: boolean): Promise<void> {
    if (present) this.#mine.set(groupKey(group, filter), [group, filter])
    else this.#mine.delete(groupKey(group, filter))
    return this.#write([group, filter, this.nodeName], present)
  }

  delivers(group: string, filter: string, event: RuntimeEvent): boolean {
    if (this.#table === undefined) return true
    const key = groupKey(group, filter)
    if (event.cursor === 0) {
      const assignment = this.assignment(event)
      const node = assignment.nodes.get(key)
      // its origin knew no member node of the group: the origin's members alone may take it
      return node === undefined ? assignment.origin : node === this.nodeName
    }
    const nodes = this.#nodes.get(key)
    // No membership of the group before this event in stream order: nobody delivers it (every node
    // judges alike). No member of the group had its SUBACK then (it waits for its membership record),
    // so this is a message published before the group existed, as on one node.
    if (nodes === undefined) return false
    return nodes[Math.floor(event.cursor / 1000) % nodes.length] === this.nodeName
  }

  /**
   * The delivering node per group of a QoS 0 message: the origin's choice carried by a relayed message
   * (`assigned`), else made here (this node is the origin) from the groups whose filter matches.
   */
  assignment(event: RuntimeEvent): Assignment {
    let assignment = this.#assigned.get(event)
    if (assignment !== undefined) return assignment
    if (this.#nodes.size === 0) return NONE // no group anywhere (the hot path of plain QoS 0 traffic)
    assignment = { origin: true, nodes: new Map() }
    const turn = hash(`${event.topic}\0${event.timestamp}`)
    for (const [key, nodes] of this.#nodes)
      if (matchesFilter(key.slice(key.indexOf('\0') + 1), event.topic))
        assignment.nodes.set(key, nodes[turn % nodes.length]!)
    this.#assigned.set(event, assignment)
    return assignment
  }

  /** A relayed QoS 0 message: its origin's choices (null: the origin knew no matching group). */
  assigned(event: RuntimeEvent, nodes: [key: string, node: string][] | null): void {
    // no group here, nor a member on its way: never asked (the hot path of plain QoS 0 traffic); with a
    // member here, not noting it would let this node take the message as its origin
    if (nodes === null && this.#nodes.size === 0 && this.#mine.size === 0) return
    this.#assigned.set(event, { origin: false, nodes: new Map(nodes ?? []) })
  }

  /** A dead node's turns go to the others: its memberships are deleted (replicated, in stream order). */
  async dropNode(node: string): Promise<void> {
    const table = this.#table
    if (table === undefined) return
    const gone = [...table.entries()].filter(({ id }) => Array.isArray(id) && id[2] === node)
    await Promise.all(gone.map(({ id }) => table.delete(id)))
  }

  /** This node was taken for dead (its memberships deleted): they are written again. */
  reassert(): void {
    for (const [group, filter] of this.#mine.values()) void this.#write([group, filter, this.nodeName], true)
  }

  #changed(change: ChangeEvent): void {
    if (change.type === 'delete') this.#note(change.id, false)
    else if (change.type === 'put') this.#note(change.id, true)
  }

  #note(id: unknown, present: boolean): void {
    if (!Array.isArray(id) || id.length !== 3) return
    const [group, filter, node] = id as [string, string, string]
    const key = groupKey(group, filter)
    const nodes = (this.#nodes.get(key) ?? []).filter((n) => n !== node)
    if (present) nodes.push(node)
    nodes.sort()
    if (nodes.length === 0) this.#nodes.delete(key)
    else this.#nodes.set(key, nodes)
  }

  /** Writes (or deletes) a membership record; resolves once done or failed (logged, tried again). */
  #write(key: string[], present: boolean): Promise<void> {
    const table = this.#table
    if (table === undefined) return Promise.resolve()
    const write = present ? table.put(key, 1) : table.delete(key)
    return write.then(
      () => {},
      (err: unknown) => {
        this.log.warn(
          { err, group: key[0], filter: key[1] },
          'cluster: shared-subscription membership not written; trying again',
        )
        // again while it is still what this node's members say (no quorum now: later)
        const again = setTimeout(() => {
          if (!this.#closed && this.#mine.has(groupKey(key[0]!, key[1]!)) === present)
            void this.#write(key, present)
        }, 1000)
        again.unref?.()
      },
    )
  }

  close(): void {
    this.#closed = true
    this.#unsubscribe?.()
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
