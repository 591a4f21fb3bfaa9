import { createHash } from 'node:crypto'
import type { KV } from '@nats-io/kv'
import type { NatsConnection, Subscription } from '@nats-io/transport-node'
import type { ClusterLog } from './options.js'
import { subjectToken } from './subjects.js'

/** What holds client connections on this node (the MQTT broker satisfies it). */
export interface ClientHolder {
  /**
   * Another node takes `clientId`: close this node's connection of it (MQTT 5 DISCONNECT 0x8E), forget
   * its session here without erasing it, and resolve once its last session writes are done.
   */
  releaseClient(clientId: string): Promise<void>
  /**
   * This node took `clientId` over from a node that died (last heard at `offlineSince`): restore its
   * durable session (its expiry runs here) and its wills (published here once due).
   */
  adoptClient(clientId: string, offlineSince: number): void
}

/** What the ownership needs of its node: stream positions. */
export interface OwnershipNode {
  /** The highest stream sequence this node published or applied. */
  position(): number
  /** The stream's last sequence, asked of JetStream. */
  lastSequence(): Promise<number>
  /** Resolves once this node applied the stream up to `position` (false: not within `timeoutMs`). */
  applied(position: number, timeoutMs: number): Promise<boolean>
  /**
   * Resolves true once every write this node acknowledged so far is in the stream: its publishes in
   * flight answered, and (`ack: local`) its outbox sent up to its present end; false after `timeoutMs`.
   */
  drained(timeoutMs: number): Promise<boolean>
}

interface OwnerValue {
  node: string
  clientId: string
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()
/** How long the owner has to let go of a client id before it is taken without its answer. */
const RELEASE_TIMEOUT_MS = 2000
/** A bucket read or write that takes longer (no quorum, NATS link down): the CONNECT goes on without it. */
const KV_TIMEOUT_MS = 2000
/** How often the client ids served without an owner entry are claimed again (while NATS is away). */
const RECLAIM_MS = 1000
/**
 * How long a release request waits for the old owner's outbox before it answers "draining" (the new
 * owner then asks again, for up to the write timeout): a responsive node answers the first at once.
 */
const QUICK_DRAIN_MS = 250

/** `work`, or a rejection after `ms` (the work itself goes on; its result is then ignored). */
function bounded<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer from NATS within ${ms} ms`)), ms)
  })
  work.catch(() => {})
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer))
}

/** KV key of a client id: base64url (KV keys allow `[-_=./A-Za-z0-9]`), hashed when long. */
export function ownerKey(clientId: string): string {
  const b64 = Buffer.from(clientId, 'utf8').toString('base64url')
  if (b64.length <= 200) return `c${b64}`
  return `h${createHash('sha256').update(clientId).digest('base64url')}`
}

/**
 * Client-id uniqueness across the cluster. KV `<prefix>-owners` maps each client id to the node that
 * serves it. A node that gets a CONNECT `acquire`s the id first: when another node owns it, that node
 * is asked (`<prefix>.ctl.<node>.release`) to close its connection and answers once its session writes
 * are in the stream, with its position; the new owner applies up to there (so it reads the session as
 * the old owner left it), then writes itself as owner with the entry's revision (of two concurrent
 * claims one wins, the other asks again). Every node watches the bucket and lets go of a client id it
 * serves that another node took (a lost race, a partition that healed).
 */
export class ClientOwnership {
  /** By KV key: who owns each client id, as last seen (this node's claims and the bucket's updates). */
  readonly #owners = new Map<string, { node: string; revision: number; clientId: string }>()
  /**
   * Client ids this node serves without an owner entry: their claim failed at CONNECT (NATS unreachable)
   * and the broker served them anyway. Claimed again each second until the bucket answers: without the
   * entry no survivor would adopt them (wills, session expiry) if this node died.
   */
  readonly #unclaimed = new Set<string>()
  #reclaimTimer: NodeJS.Timeout | undefined
  #reclaiming = false
  #holder: ClientHolder | undefined
  #sub: Subscription | undefined
  #drainSub: Subscription | undefined
  #watching: { stop(): void } | undefined
  #closed = false
  readonly ready: Promise<void>
  #loaded!: () => void

  constructor(
    private readonly nats: NatsConnection,
    private readonly kv: KV,
    private readonly nodeName: string,
    private readonly prefix: string,
    private readonly node: OwnershipNode,
    private readonly log: ClusterLog,
    private readonly waitMs: number,
  ) {
    this.ready = new Promise<void>((resolve) => {
      this.#loaded = resolve
    })
  }

  /** Starts answering release requests and following the owner bucket; `ready` settles once loaded. */
  async start(): Promise<void> {
    this.#sub = this.nats.subscribe(`${this.prefix}.ctl.${subjectToken(this.nodeName)}.release`, {
      callback: (error, msg) => {
        if (error) return
        void (async () => {
          let clientId = ''
          try {
            const request = JSON.parse(decoder.decode(msg.data)) as { clientId: string; by: string }
            clientId = request.clientId
            const key = ownerKey(clientId)
            if (this.#owners.get(key)?.node === this.nodeName)
              this.#owners.set(key, { node: request.by, revision: 0, clientId })
            await this.#holder?.releaseClient(clientId)
            // what this node acknowledged of the session (ack: local: in its outbox) must be in the stream
            // before the new owner reads it: answered at once, or "draining" (the new owner asks again)
            const drained = await this.node.drained(QUICK_DRAIN_MS)
            msg.respond(
              encoder.encode(JSON.stringify({ position: this.node.position(), draining: !drained })),
            )
          } catch (err) {
            this.log.warn({ err, clientId }, 'cluster: releasing a client id failed')
          }
        })()
      },
    })
    this.#drainSub = this.nats.subscribe(`${this.prefix}.ctl.${subjectToken(this.nodeName)}.drained`, {
      callback: (error, msg) => {
        if (error) return
        void (async () => {
          this.log.info({}, 'cluster: a released client id waits for this node to publish its outbox')
          const drained = await this.node.drained(this.waitMs)
          msg.respond(encoder.encode(JSON.stringify({ position: this.node.position(), drained })))
        })().catch((err) => this.log.warn({ err }, 'cluster: answering a drain request failed'))
      },
    })
    let pending: number
    let watch: Awaited<ReturnType<KV['watch']>>
    try {
      pending = (await this.kv.status()).values
      watch = await this.kv.watch()
    } catch (error) {
      this.#loaded() // the broker restores what this node knows it owns: nothing
      throw error
    }
    this.#watching = watch
    if (pending === 0) this.#loaded()
    const loadTimer = setTimeout(() => this.#loaded(), 5000)
    loadTimer.unref?.()
    void (async () => {
      for await (const entry of watch) {
        if (entry.delta === 0) {
          clearTimeout(loadTimer)
          this.#loaded()
        }
        if (entry.operation !== 'PUT') {
          const known = this.#owners.get(entry.key)
          if (known !== undefined && known.revision < entry.revision) this.#owners.delete(entry.key)
          continue
        }
        let value: OwnerValue
        try {
          value = JSON.parse(decoder.decode(entry.value)) as OwnerValue
        } catch {
          continue
        }
        const known = this.#owners.get(entry.key)
        if (known !== undefined && known.revision > entry.revision) continue
        this.#owners.set(entry.key, { node: value.node, revision: entry.revision, clientId: value.clientId })
        const unclaimed = value.node !== this.nodeName && this.#unclaimed.delete(value.clientId)
        if (unclaimed || (entry.isUpdate && value.node !== this.nodeName && known?.node !== value.node))
          // another node took a client id this node may serve (a race it lost, or one served here while
          // NATS was unreachable): let go, without answering
          this.#holder?.releaseClient(value.clientId).catch(() => {})
      }
    })().catch((err) => {
      if (!this.#closed) this.log.warn({ err }, 'cluster: following client owners stopped')
    })
  }

  /** The broker that lets go of client ids. */
  attach(holder: ClientHolder): void {
    this.#holder = holder
  }

  /** Whether this node serves `clientId` (restores its session and runs its timers). */
  owns(clientId: string): boolean {
    return this.#owners.get(ownerKey(clientId))?.node === this.nodeName
  }

  /**
   * Makes this node the owner of `clientId`, taking it from the node that has it. Resolves true when
   * another node had it (session state kept in memory here is stale), false when it was this node's or
   * nobody's. Rejects when NATS cannot be reached.
   */
  async acquire(clientId: string): Promise<boolean> {
    try {
      const moved = await this.#acquire(clientId)
      this.#unclaimed.delete(clientId)
      return moved
    } catch (error) {
      // the broker serves it anyway (availability): claimed once NATS answers again
      this.#unclaimed.add(clientId)
      this.#scheduleReclaim()
      throw error
    }
  }

  async #acquire(clientId: string): Promise<boolean> {
    const key = ownerKey(clientId)
    const value = encoder.encode(JSON.stringify({ node: this.nodeName, clientId } satisfies OwnerValue))
    let moved = false
    for (let attempt = 0; ; attempt++) {
      const entry = await bounded(this.kv.get(key), KV_TIMEOUT_MS, 'reading the client owner')
      const current =
        entry !== null && entry.operation === 'PUT'
          ? (JSON.parse(decoder.decode(entry.value)) as OwnerValue)
          : undefined
      if (current?.node === this.nodeName) {
        this.#owners.set(key, { node: this.nodeName, revision: entry!.revision, clientId })
        return moved
      }
      if (current !== undefined) {
        moved = true
        const position = await this.#release(current.node, clientId)
        if (!(await this.node.applied(position, this.waitMs)))
          this.log.warn({ clientId, position }, 'cluster: took a client id before its session state arrived')
      } else if (entry !== null) {
        // its session ended on a node that deleted the entry once the session's last writes were in the
        // stream: they are applied here before the session is read (a resume finds it gone)
        const last = await bounded(this.node.lastSequence(), KV_TIMEOUT_MS, 'reading the stream position')
        if (!(await this.node.applied(last, this.waitMs)))
          this.log.warn(
            { clientId, position: last },
            'cluster: took a client id before its session state arrived',
          )
      }
      try {
        const revision = await bounded(
          entry === null ? this.kv.create(key, value) : this.kv.update(key, value, entry.revision),
          KV_TIMEOUT_MS,
          'claiming the client id',
        )
        this.#owners.set(key, { node: this.nodeName, revision, clientId })
        return moved
      } catch (error) {
        // another node claimed it meanwhile: ask again (it lets go of it in turn)
        if (attempt >= 4 || !isWrongRevision(error)) throw error
      }
    }
  }

  /**
   * `node` died (last heard at `since`): this node takes each client id it owned (`update` at the
   * revision seen: a client that reconnected elsewhere meanwhile stays there) and its broker restores
   * their sessions and wills, once this node applied everything the dead node wrote. Resolves with how
   * many it took.
   */
  async adopt(node: string, since: number): Promise<number> {
    const last = await bounded(this.node.lastSequence(), KV_TIMEOUT_MS, 'reading the stream position')
    if (!(await this.node.applied(last, this.waitMs)))
      throw new Error(`the stream up to ${last} was not applied within ${this.waitMs} ms`)
    let taken = 0
    for (const [key, owner] of [...this.#owners]) {
      if (owner.node !== node) continue
      const { clientId } = owner
      const value = encoder.encode(JSON.stringify({ node: this.nodeName, clientId } satisfies OwnerValue))
      let revision: number
      try {
        revision = await bounded(this.kv.update(key, value, owner.revision), KV_TIMEOUT_MS, 'adopting')
      } catch (error) {
        if (!isWrongRevision(error)) throw error
        continue
      }
      this.#owners.set(key, { node: this.nodeName, revision, clientId })
      this.#holder?.adoptClient(clientId, since)
      taken++
    }
    return taken
  }

  /**
   * This node's session of `clientId` ended (no connection, nothing kept): the entry goes, once the
   * session's last writes (its erasure) are in the stream, so a node that sees the entry gone and then
   * applies the stream's end reads the session gone too.
   */
  forget(clientId: string): void {
    this.#unclaimed.delete(clientId)
    const key = ownerKey(clientId)
    const mine = this.#owners.get(key)
    if (mine?.node !== this.nodeName) return
    this.#owners.delete(key)
    void (async () => {
      // the session's erasure was submitted before this call (or sits in the outbox): wait for it
      await new Promise((resolve) => setImmediate(resolve))
      while (!(await this.node.drained(this.waitMs)) && !this.#closed) {}
      // with its revision: a claim by another node meanwhile stays
      await this.kv.delete(key, { previousSeq: mine.revision })
    })().catch(() => {})
  }

  #scheduleReclaim(): void {
    if (this.#reclaimTimer !== undefined || this.#closed) return
    this.#reclaimTimer = setInterval(() => void this.#reclaim(), RECLAIM_MS)
    this.#reclaimTimer.unref?.()
  }

  /** One round of claiming the client ids served here without an owner entry (see `#unclaimed`). */
  async #reclaim(): Promise<void> {
    if (this.#reclaiming) return
    this.#reclaiming = true
    try {
      for (const clientId of [...this.#unclaimed]) {
        if (this.#closed) return
        try {
          await this.#claimServed(clientId)
        } catch {
          return // NATS still away: the next round tries again
        }
      }
    } finally {
      this.#reclaiming = false
      if (this.#unclaimed.size === 0 || this.#closed) {
        clearInterval(this.#reclaimTimer)
        this.#reclaimTimer = undefined
      }
    }
  }

  /**
   * `clientId` is served here without an owner entry: this node becomes its owner if nobody is; if
   * another node took it meanwhile (the client connected there too), this node's connection goes (0x8E).
   */
  async #claimServed(clientId: string): Promise<void> {
    const key = ownerKey(clientId)
    const entry = await bounded(this.kv.get(key), KV_TIMEOUT_MS, 'reading the client owner')
    if (!this.#unclaimed.has(clientId)) return // its session ended, or a CONNECT claimed it meanwhile
    const current =
      entry !== null && entry.operation === 'PUT'
        ? (JSON.parse(decoder.decode(entry.value)) as OwnerValue)
        : undefined
    if (current !== undefined && current.node !== this.nodeName) {
      this.#unclaimed.delete(clientId)
      this.log.warn(
        { clientId, owner: current.node },
        'cluster: a client id served while NATS was unreachable is owned by another node; closing it here',
      )
      await this.#holder?.releaseClient(clientId)
      return
    }
    let revision = entry?.revision ?? 0
    if (current === undefined) {
      const value = encoder.encode(JSON.stringify({ node: this.nodeName, clientId } satisfies OwnerValue))
      revision = await bounded(
        entry === null ? this.kv.create(key, value) : this.kv.update(key, value, entry.revision),
        KV_TIMEOUT_MS,
        'claiming the client id',
      )
    }
    if (!this.#unclaimed.delete(clientId)) {
      // its session ended while the claim was on its way: the entry goes again (unless claimed since)
      if (current === undefined) this.kv.delete(key, { previousSeq: revision }).catch(() => {})
      return
    }
    this.#owners.set(key, { node: this.nodeName, revision, clientId })
    this.log.info({ clientId }, 'cluster: claimed a client id served while NATS was unreachable')
  }

  /** Asks `node` to let go of `clientId`; the stream position its session writes reached. */
  async #release(node: string, clientId: string): Promise<number> {
    let reply: { position: number; draining?: boolean }
    try {
      const answer = await this.nats.request(
        `${this.prefix}.ctl.${subjectToken(node)}.release`,
        encoder.encode(JSON.stringify({ clientId, by: this.nodeName })),
        { timeout: RELEASE_TIMEOUT_MS },
      )
      reply = JSON.parse(decoder.decode(answer.data)) as typeof reply
    } catch (error) {
      // the owner is gone or cut off: everything it wrote is in the stream's last sequence at most
      this.log.info({ clientId, node, err: error }, 'cluster: the owner of a client id did not answer')
      return bounded(this.node.lastSequence(), KV_TIMEOUT_MS, 'reading the stream position')
    }
    if (reply.draining !== true) return reply.position
    // ack: local: the old owner still has acknowledged writes in its outbox (the session's, or earlier
    // ones of its client): wait until they are in the stream, so nothing it acknowledged is missed here
    // or lands after this node's writes for the client
    try {
      const answer = await this.nats.request(
        `${this.prefix}.ctl.${subjectToken(node)}.drained`,
        encoder.encode(JSON.stringify({ clientId })),
        { timeout: this.waitMs + RELEASE_TIMEOUT_MS },
      )
      const drained = JSON.parse(decoder.decode(answer.data)) as { position: number; drained: boolean }
      if (!drained.drained)
        this.log.warn(
          { clientId, node, ms: this.waitMs },
          'cluster: took a client id while its old node could not publish its outbox; writes it acknowledged arrive later',
        )
      return drained.position
    } catch (error) {
      this.log.warn(
        { clientId, node, err: error },
        'cluster: the old owner of a client id did not say its outbox was sent',
      )
      return reply.position
    }
  }

  close(): void {
    this.#closed = true
    clearInterval(this.#reclaimTimer)
    this.#sub?.unsubscribe()
    this.#drainSub?.unsubscribe()
    this.#watching?.stop()
    this.#loaded()
  }
}

function isWrongRevision(error: unknown): boolean {
  const e = error as { api_error?: { err_code?: number }; message?: string }
  return e?.api_error?.err_code === 10071 || /wrong last sequence|key exists/i.test(String(e?.message))
}
