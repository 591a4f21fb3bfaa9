import { randomUUID } from 'node:crypto'
import type { KV, KvEntry } from '@nats-io/kv'
import type { Heartbeats } from './heartbeats.js'
import type { ClusterLog } from './options.js'
import { retryTransient } from './retry.js'

/** A node not heard for this long is dead: its clients' wills and session expiry move to a survivor. */
const LEASE_MS = 6000
/** This node judges others only while its own heartbeat came back this recently (its view is current). */
const SELF_CURRENT_MS = 2500
const CHECK_MS = 1000

/** KV `<prefix>-nodes` value: a registered node, or one a survivor claimed as dead. */
interface NodeEntry {
  node: string
  /** Which run of the node registered (a restart registers again, so a claim of the old run fails). */
  boot: string
  state: 'alive' | 'dead'
  /** state dead: the node that adopts its clients, and which run of it. */
  by?: string
  byBoot?: string
  /** state dead: when the node was last heard (ms since the epoch, the claimer's clock). */
  since?: number
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** KV key of a node name (base64url: KV keys allow `[-_=./A-Za-z0-9]`). */
function nodeKey(node: string): string {
  return `n${Buffer.from(node, 'utf8').toString('base64url')}`
}

/**
 * Finds nodes that died and hands their clients to this node, one survivor per dead node. Every node
 * registers in KV `<prefix>-nodes` at start (`put`, with a new boot id) and heartbeats on core NATS.
 * Each second a node whose own heartbeat is current looks at the registered nodes: one not heard for
 * the lease is claimed with `update` at the revision it saw (of several survivors one wins; a restart
 * of the node meanwhile changed the revision, so nobody wins); the winner adopts its clients
 * (`adopt`), then deletes the entry. A claim whose claimer died in turn is claimed again the same way.
 */
export class DeadNodes {
  readonly #boot = randomUUID()
  /** By KV key: the entry, its revision, and when this node first saw that revision. */
  readonly #entries = new Map<string, { value: NodeEntry; revision: number; observed: number }>()
  #watching: { stop(): void } | undefined
  #timer: NodeJS.Timeout | undefined
  #checking = false
  #closed = false

  constructor(
    private readonly kv: KV,
    private readonly heartbeats: Heartbeats,
    private readonly nodeName: string,
    private readonly log: ClusterLog,
    private readonly hooks: {
      /** Takes over the work of `node` (last heard at `since`); resolves with how many clients. */
      adopt(node: string, since: number): Promise<number>
      /** This node was taken for dead and registered again. */
      revived(): void
    },
  ) {}

  /**
   * Registers this node and follows the others; retried while JetStream is not answering (a bucket just
   * created has no leader for a moment), until the node closes.
   */
  async register(): Promise<void> {
    const retry = { deadline: Number.POSITIVE_INFINITY, log: this.log, stopped: () => this.#closed }
    await retryTransient('registering this node', () => this.#put(), retry)
    const watch = await retryTransient('following the registered nodes', () => this.kv.watch(), retry)
    this.#watching = watch
    void (async () => {
      for await (const entry of watch) this.#seen(entry)
    })().catch((err) => {
      if (!this.#closed) this.log.warn({ err }, 'cluster: following the registered nodes stopped')
    })
  }

  /** Starts looking for dead nodes (once this node may adopt clients: caught up, owners loaded). */
  startChecking(): void {
    if (this.#closed || this.#timer !== undefined) return
    this.#timer = setInterval(() => void this.#check(), CHECK_MS)
    this.#timer.unref?.()
  }

  #put(): Promise<number> {
    const value: NodeEntry = { node: this.nodeName, boot: this.#boot, state: 'alive' }
    return this.kv.put(nodeKey(this.nodeName), encoder.encode(JSON.stringify(value)))
  }

  #seen(entry: KvEntry): void {
    if (entry.operation !== 'PUT') {
      this.#entries.delete(entry.key)
      // this node's entry gone (claimed as dead and adopted): it registers again
      if (entry.key === nodeKey(this.nodeName)) this.#revive('its entry was deleted')
      return
    }
    let value: NodeEntry
    try {
      value = JSON.parse(decoder.decode(entry.value)) as NodeEntry
    } catch {
      return
    }
    this.#entries.set(entry.key, { value, revision: entry.revision, observed: Date.now() })
    // another node took this one for dead (a partition, a stall): register again; the clients it
    // served are the claimer's now (the owner watch closes their connections here)
    if (value.node === this.nodeName && value.state === 'dead') this.#revive(`claimed by ${value.by}`)
  }

  #revive(why: string): void {
    if (this.#closed) return
    this.log.warn({ why }, 'cluster: this node was taken for dead; registering again')
    this.#put().then(
      () => this.hooks.revived(),
      (err) => this.log.warn({ err }, 'cluster: registering again failed'),
    )
  }

  /** Whether `node` (or, for a claim, its claimer) has not been heard within the lease. */
  #silent(node: string, observed: number, now: number): number | undefined {
    const last = Math.max(this.heartbeats.lastHeard(node) ?? 0, observed)
    return now - last > LEASE_MS ? last : undefined
  }

  async #check(): Promise<void> {
    if (this.#checking || this.#closed || !this.heartbeats.current(SELF_CURRENT_MS)) return
    this.#checking = true
    try {
      const now = Date.now()
      for (const [key, { value, revision, observed }] of [...this.#entries]) {
        if (value.node === this.nodeName) continue
        let since: number | undefined
        if (value.state === 'alive') since = this.#silent(value.node, observed, now)
        else if (value.by === this.nodeName)
          // claimed by an earlier run of this node, or by this run before adopting failed: again
          since = value.byBoot !== this.#boot ? value.since : undefined
        else if (this.#silent(value.by ?? '', observed, now) !== undefined) since = value.since // claimed by a node that died in turn before it finished
        if (since !== undefined) await this.#claim(key, value, revision, since)
      }
    } finally {
      this.#checking = false
    }
  }

  async #claim(key: string, dead: NodeEntry, revision: number, since: number): Promise<void> {
    const claim: NodeEntry = {
      node: dead.node,
      boot: dead.boot,
      state: 'dead',
      by: this.nodeName,
      byBoot: this.#boot,
      since,
    }
    let claimed: number
    try {
      claimed = await this.kv.update(key, encoder.encode(JSON.stringify(claim)), revision)
    } catch {
      return // another survivor claimed it first, or the node registered again
    }
    this.log.warn(
      { node: dead.node, lastHeard: new Date(since).toISOString() },
      'cluster: a node died; adopting its clients (wills, session expiry)',
    )
    try {
      const adopted = await this.hooks.adopt(dead.node, since)
      this.log.info({ node: dead.node, clients: adopted }, 'cluster: adopted the clients of a dead node')
      await this.kv.delete(key, { previousSeq: claimed })
    } catch (err) {
      // the claim stays: checked again next time (this node's claim of this run is not retried)
      this.#entries.set(key, { value: { ...claim, byBoot: '' }, revision: claimed, observed: Date.now() })
      this.log.warn({ err, node: dead.node }, 'cluster: adopting the clients of a dead node failed')
    }
  }

  close(): void {
    this.#closed = true
    if (this.#timer) clearInterval(this.#timer)
    this.#watching?.stop()
  }
}
