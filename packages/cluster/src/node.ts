import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream'
import { type KV, Kvm } from '@nats-io/kv'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { type ReplicatedTransaction, type Replicator, StorageError, type Store } from '@proj/storage'
import { DeadNodes } from './dead-nodes.js'
import { ClusterUnavailableError } from './errors.js'
import { Heartbeats } from './heartbeats.js'
import { connectionOptions, ensureStream } from './nats-setup.js'
import { type ClusterOptions, type ResolvedClusterOptions, resolveOptions } from './options.js'
import { OutboxSender } from './outbox-sender.js'
import { ClientOwnership } from './ownership.js'
import { Relay } from './relay.js'
import { retryTransient, sleep } from './retry.js'
import { SharedGroups } from './shares.js'
import { StreamPublisher } from './stream-publisher.js'
import { StreamReader } from './stream-reader.js'
import { recordSubject } from './subjects.js'

/** Where a node stands (`/health` shows it). */
export type ClusterState = 'connecting' | 'catching-up' | 'ready' | 'failed'

/**
 * How often a node that applies the stream asks whether the stream still holds the next message it needs
 * (retention may drop it while the node is cut off or stalled); a gap the consumer runs into asks at once.
 */
const LOSS_CHECK_MS = 5000

/**
 * How long a publish waits for JetStream's acknowledgement before it is sent again (same `Nats-Msg-Id`,
 * stored once). The first waits long (a slow acknowledgement under load is no reason to resend); once
 * one failed, the stream is likely electing a leader, where nobody answers and a publish sent just before
 * the new leader took over is lost: a retry that waited 2 s for it held writes that long after the election.
 */
const FIRST_ATTEMPT_MS = 2000
const RETRY_ATTEMPT_MS = 500

/** Tables that stay on their node: which index builds this node has done. */
const LOCAL_TABLES = /^__indexes$/

/** One node's link to the cluster: the replicator for its store and the consumer that applies the stream. */
export interface ClusterNode {
  readonly nodeName: string
  /** The storage node id (from the node name). */
  readonly nodeId: number
  readonly state: ClusterState
  /** Give this to `openStore({ replicator })`. */
  readonly replicator: Replicator
  /**
   * Starts applying the stream to `store` from its stored position; resolves at once. `ready()` settles
   * once the node has applied everything the stream held when this was called.
   */
  start(store: Store): void
  /** Resolves once caught up (state `ready`); rejects when applying failed. */
  ready(): Promise<void>
  /** The stream's sequence as last seen, and this node's applied position. */
  positions(): { stream: number; applied: number }
  /**
   * Tells `listener` each change of `state` (for example `ready` → `failed`: the node can no longer
   * catch up, so it must stop serving); returns a function that stops telling.
   */
  onState(listener: (state: ClusterState) => void): () => void
  /** Stops consuming and closes the NATS connection (the store stays open: close it after). */
  close(): Promise<void>
  /** The NATS connection (relays, KV), for the cluster package's other modules. */
  readonly nats: NatsConnection
  /**
   * QoS 0 messages across nodes: give `relay.relay` to `openRuntime({ relay })`, then
   * `relay.attach(runtime)` once the runtime is open.
   */
  readonly relay: Relay
  /**
   * Client-id uniqueness (MQTT takeover across nodes): `ownership.attach(broker)` and give it to the
   * broker as its `ownership` option; `ownership.ready` settles once the node caught up and the owners
   * are loaded.
   */
  readonly ownership: ClientOwnership
  /** Shared subscriptions across nodes: give it to `openRuntime({ shared })`. */
  readonly shared: SharedGroups
}

/**
 * Connects to NATS, creates the stream if missing and returns the node. Throws when NATS cannot be
 * reached within the connect timeout.
 *
 * @example
 * const node = await joinCluster({ servers: ['nats://127.0.0.1:4222'], nodeName: 'a', replicas: 1 })
 * const store = await openStore({ path, nodeId: node.nodeId, replicator: node.replicator })
 * node.start(store)
 * await node.ready()
 */
export async function joinCluster(options: ClusterOptions): Promise<ClusterNode> {
  const resolved = resolveOptions(options)
  const nc = await connect(await connectionOptions(resolved))
  let relayNc: NatsConnection | undefined
  try {
    // right after NATS starts (or while JetStream elects a meta leader) API requests time out or are
    // refused for seconds: retried until the join timeout
    const retry = { deadline: Date.now() + resolved.joinTimeoutMs, log: resolved.log }
    const jsm = await retryTransient('reaching JetStream', () => jetstreamManager(nc), retry)
    await retryTransient('creating the stream', () => ensureStream(jsm, resolved), retry)
    const bucket = (name: string) =>
      retryTransient(
        `creating the ${name} bucket`,
        () =>
          new Kvm(nc).create(`${resolved.prefix}-${name}`, {
            replicas: resolved.replicas,
            history: 1,
            timeout: 2000,
          }),
        retry,
      )
    const owners = await bucket('owners')
    const nodes = await bucket('nodes')
    // QoS 0 relay: a connection of its own without echo (a node never receives its own messages)
    relayNc = await connect({
      ...(await connectionOptions(resolved)),
      name: `proj-${resolved.nodeName}-relay`,
      noEcho: true,
    })
    return new Node(resolved, nc, relayNc, jsm, jetstream(nc), owners, nodes)
  } catch (error) {
    await nc.close()
    await relayNc?.close()
    throw error
  }
}

class Node implements ClusterNode {
  readonly nodeName: string
  readonly nodeId: number
  state: ClusterState = 'connecting'
  readonly replicator: Replicator
  readonly relay: Relay
  readonly ownership: ClientOwnership
  readonly shared: SharedGroups
  readonly #heartbeats: Heartbeats
  readonly #deadNodes: DeadNodes
  #store: Store | undefined
  /** Who waits for the applied position to reach a sequence (ownership hand-over). */
  #waiters: { position: number; resolve: (reached: boolean) => void }[] = []
  #streamLast = 0
  #target = 0
  /** The next stream sequence to apply (0 until applying starts). */
  #next = 0
  readonly #stateListeners = new Set<(state: ClusterState) => void>()
  #lossTimer: NodeJS.Timeout | undefined
  #checkingLoss = false
  readonly #inflight = new Set<Promise<unknown>>()
  #closed = false
  readonly #reader: StreamReader
  /** This node's writes to the stream (`#publish`). */
  readonly #publisher: StreamPublisher
  #ready: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void }
  #consuming: Promise<void> | undefined
  /** Publishes the store's outbox (`ack: local` commits, or what a previous local-mode run left). */
  readonly #outbox: OutboxSender

  constructor(
    readonly options: ResolvedClusterOptions,
    readonly nats: NatsConnection,
    private readonly relayNats: NatsConnection,
    readonly jsm: JetStreamManager,
    readonly js: JetStreamClient,
    kv: KV,
    nodes: KV,
  ) {
    this.nodeName = options.nodeName
    this.nodeId = options.nodeId
    this.#publisher = new StreamPublisher(nats)
    this.#outbox = new OutboxSender(
      this.#publisher,
      options.prefix,
      options.log,
      (seq) => {
        if (seq > this.#streamLast) this.#streamLast = seq
      },
      options.outboxLimit,
    )
    this.#reader = new StreamReader(js, nats, options.prefix, options.log, () => this.#stopped())
    this.#heartbeats = new Heartbeats(nats, options.prefix, options.nodeName)
    this.shared = new SharedGroups(options.nodeName, options.log)
    this.relay = new Relay(
      relayNats,
      options.prefix,
      options.nodeName,
      options.nodeId,
      options.log,
      this.shared,
      options.options.relayHoldMs,
    )
    this.ownership = new ClientOwnership(
      nats,
      kv,
      options.nodeName,
      options.prefix,
      {
        position: () => Math.max(this.#streamLast, this.#store?.replicatedPosition ?? 0),
        lastSequence: async () => (await this.jsm.streams.info(options.prefix)).state.last_seq,
        applied: (position, timeoutMs) => this.#applied(position, timeoutMs),
        drained: (timeoutMs) => this.#drained(timeoutMs),
      },
      options.log,
      options.writeTimeoutMs,
    )
    this.#deadNodes = new DeadNodes(nodes, this.#heartbeats, options.nodeName, options.log, {
      // its shared-subscription turns go to the others, then its clients come here
      adopt: async (node, since) => {
        await this.shared.dropNode(node)
        return this.ownership.adopt(node, since)
      },
      revived: () => this.shared.reassert(),
    })
    let resolve!: () => void
    let reject!: (e: unknown) => void
    const promise = new Promise<void>((res, rej) => {
      resolve = res
      reject = rej
    })
    promise.catch(() => {})
    this.#ready = { promise, resolve, reject }
    const outbox = this.#outbox
    this.replicator = {
      replicates: (table) => !LOCAL_TABLES.test(table),
      submit: (txn) => this.#track(this.#publish(txn)),
      // ack: local: storage commits here with an outbox entry; the sender publishes it
      commitsLocally: options.ack === 'local',
      get maxBytes() {
        // room for the headers (Nats-Msg-Id) next to the body
        return (nats.info?.max_payload ?? 1024 * 1024) - 1024
      },
      outboxed: () => outbox.kick(),
      refusal: () => outbox.refusal(),
      // an own write whose cursor slots are used up waits for the next applied message as for a quorum
      positionWaitMs: options.writeTimeoutMs,
    }
  }

  /** Publishes in flight (replicated mode), so a hand-over can wait until they are in the stream. */
  #track<T>(publishing: Promise<T>): Promise<T> {
    this.#inflight.add(publishing)
    const done = () => this.#inflight.delete(publishing)
    publishing.then(done, done)
    return publishing
  }

  /** See `OwnershipNode.drained`: the publishes in flight now answered, and the outbox sent to its end. */
  async #drained(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    if (this.#inflight.size > 0) {
      let timer: NodeJS.Timeout | undefined
      const answered = await Promise.race([
        Promise.allSettled([...this.#inflight]).then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), timeoutMs)
        }),
      ])
      clearTimeout(timer)
      if (!answered) return false
    }
    return this.#outbox.drained(Math.max(0, deadline - Date.now()))
  }

  positions() {
    return { stream: this.#streamLast, applied: this.#store?.replicatedPosition ?? 0 }
  }

  onState(listener: (state: ClusterState) => void): () => void {
    this.#stateListeners.add(listener)
    return () => this.#stateListeners.delete(listener)
  }

  #setState(state: ClusterState): void {
    if (this.state === state) return
    this.state = state
    for (const listener of [...this.#stateListeners]) {
      try {
        listener(state)
      } catch (error) {
        this.options.log.error({ err: error, state }, 'cluster: a state listener failed')
      }
    }
  }

  ready(): Promise<void> {
    return this.#ready.promise
  }

  #applied(position: number, timeoutMs: number): Promise<boolean> {
    if ((this.#store?.replicatedPosition ?? 0) >= position) return Promise.resolve(true)
    return new Promise((resolve) => {
      let done = false
      const timer = setTimeout(() => settle(false), timeoutMs)
      timer.unref?.()
      const settle = (reached: boolean) => {
        if (done) return
        done = true
        clearTimeout(timer)
        resolve(reached)
      }
      // kept sorted by position (acks come nearly in order: the search starts at the end)
      let i = this.#waiters.length
      while (i > 0 && this.#waiters[i - 1]!.position > position) i--
      this.#waiters.splice(i, 0, { position, resolve: settle })
    })
  }

  #wake(applied: number): void {
    let n = 0
    while (n < this.#waiters.length && this.#waiters[n]!.position <= applied)
      this.#waiters[n++]!.resolve(true)
    if (n > 0) this.#waiters.splice(0, n)
  }

  /** Publishes with the transaction's id as `Nats-Msg-Id`, retrying (same id) until the write timeout. */
  async #publish(txn: ReplicatedTransaction): Promise<{ wait: boolean; applyWithinMs: number }> {
    const first = txn.writes[0]!
    const kind = txn.writes.some((w) => w.type === 'message') ? 'm' : 'r'
    const subject = recordSubject(this.options.prefix, kind, first.table, first.id)
    const deadline = Date.now() + this.options.writeTimeoutMs
    let wait = 50
    let attemptMs = FIRST_ATTEMPT_MS
    for (;;) {
      if (this.#closed) throw new ClusterUnavailableError('the cluster node is closing')
      const left = deadline - Date.now()
      try {
        const ack = await this.#publisher.publish(
          subject,
          txn.data,
          txn.id,
          Math.max(250, Math.min(left, attemptMs)),
        )
        if (ack.seq > this.#streamLast) this.#streamLast = ack.seq
        const applyWithinMs = this.options.applyTimeoutMs
        // storage fails the writers after applyWithinMs; this says why, with the positions
        void this.#applied(ack.seq, applyWithinMs).then((reached) => {
          if (!reached && !this.#closed)
            this.options.log.warn(
              { seq: ack.seq, ...this.positions(), state: this.state, ms: applyWithinMs },
              'cluster: a write in the stream was not applied on this node in time; it failed (503, outcome unknown)',
            )
        })
        return { wait: true, applyWithinMs }
      } catch (error) {
        if (isTooLarge(error))
          throw new StorageError('STORAGE_INVALID_VALUE', `the write is larger than NATS accepts: ${error}`)
        if (Date.now() + wait >= deadline) {
          this.options.log.warn({ err: error }, 'cluster: a write found no JetStream quorum in time')
          throw new ClusterUnavailableError(
            `no JetStream quorum within ${this.options.writeTimeoutMs} ms: ${(error as Error)?.message ?? error}`,
          )
        }
        await sleep(wait)
        wait = Math.min(wait * 2, 500)
        attemptMs = RETRY_ATTEMPT_MS
      }
    }
  }

  start(store: Store): void {
    if (this.#store !== undefined) throw new Error('cluster node already started')
    this.#store = store
    this.#setState('catching-up')
    this.#heartbeats.start()
    if (store.outbox !== undefined) this.#outbox.start(store.outbox)
    this.shared.start(store)
    this.ownership.start().catch((error) => {
      if (!this.#closed) this.options.log.error({ err: error }, 'cluster: cannot follow client owners')
    })
    // a dead node's clients are adopted only by a node that caught up and knows the owners
    const registered = this.#deadNodes.register()
    Promise.all([registered, this.#ready.promise, this.ownership.ready]).then(
      () => this.#deadNodes.startChecking(),
      (error) => {
        if (!this.#closed) this.options.log.error({ err: error }, 'cluster: cannot follow node liveness')
      },
    )
    this.#consuming = this.#consume(store).catch((error) => this.#fail(error))
  }

  /**
   * Fails the node when the stream no longer holds the next message it needs (retention dropped it while
   * the node was away, cut off or stalled): its store can never be current again, so it must not serve.
   */
  async #checkLoss(): Promise<void> {
    if (this.#checkingLoss || this.#stopped() || this.#next === 0) return
    this.#checkingLoss = true
    try {
      const info = await this.jsm.streams.info(this.options.prefix)
      const lost = lostError(this.#next, info.state.first_seq)
      if (lost !== undefined) this.#fail(lost)
    } catch {
      // NATS or the stream leader unreachable: asked again later
    } finally {
      this.#checkingLoss = false
    }
  }

  async #consume(store: Store): Promise<void> {
    const { prefix, log } = this.options
    const started = Date.now()
    // retried while the node is open: it stays catching-up (and says so) until JetStream answers
    const info = await retryTransient('reading the stream position', () => this.jsm.streams.info(prefix), {
      deadline: Number.POSITIVE_INFINITY,
      log,
      stopped: () => this.#stopped(),
    })
    this.#target = info.state.last_seq
    if (this.#target > this.#streamLast) this.#streamLast = this.#target
    const from = store.replicatedPosition + 1
    const lost = lostError(from, info.state.first_seq)
    if (lost !== undefined) throw lost
    log.info({ applied: from - 1, stream: this.#target }, 'cluster: catching up')
    this.#checkReady(store, started)
    let next = from
    this.#next = next
    this.#lossTimer = setInterval(() => void this.#checkLoss(), LOSS_CHECK_MS)
    this.#lossTimer.unref?.()
    let pending: Promise<void> = Promise.resolve()
    let inFlight = 0
    // Applying stays exactly in stream order whichever way a message came (consumer or direct read):
    // a duplicate is skipped, a message past the next one refused (its source starts over).
    const deliver = (seq: number, data: Uint8Array): boolean | Promise<boolean> => {
      if (seq < next) return true
      if (seq > next) {
        void this.#checkLoss()
        return false
      }
      this.#next = next = seq + 1
      if (seq > this.#streamLast) this.#streamLast = seq
      // queued without waiting: everything that arrives while a commit runs shares the next one
      inFlight++
      pending = store.applyReplicated(data, seq).then(() => {
        inFlight--
        if (this.state === 'catching-up') this.#checkReady(store, started)
        this.#wake(store.replicatedPosition)
      })
      pending.catch((error) => this.#fail(error))
      // the source waits only when this many applies are queued
      if (inFlight >= 4096) return pending.then(() => true)
      return true
    }
    await this.#reader.run(
      () => next,
      () => this.#streamLast,
      deliver,
    )
    await pending
  }

  #stopped(): boolean {
    return this.#closed || this.state === 'failed'
  }

  #fail(error: unknown): void {
    if (this.#closed || this.state === 'failed') return
    const wasReady = this.state === 'ready'
    this.options.log.error(
      { err: error, ...this.positions() },
      wasReady
        ? 'cluster: this node can no longer apply the stream; it stopped applying and serves nothing (failed)'
        : 'cluster: applying the stream failed; this node stopped applying',
    )
    clearInterval(this.#lossTimer)
    this.#setState('failed')
    this.#ready.reject(error)
    this.#reader.stop()
  }

  #checkReady(store: Store, started: number): void {
    if (this.state !== 'catching-up' || store.replicatedPosition < this.#target) return
    this.#setState('ready')
    this.options.log.info(
      { position: store.replicatedPosition, ms: Date.now() - started },
      'cluster: caught up',
    )
    this.#ready.resolve()
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#lossTimer)
    this.#stateListeners.clear()
    this.relay.close()
    this.ownership.close()
    this.#deadNodes.close()
    this.#heartbeats.close()
    this.shared.close()
    for (const w of this.#waiters) w.resolve(false)
    this.#waiters = []
    this.#reader.stop()
    this.#ready.reject(new ClusterUnavailableError('the cluster node closed'))
    // the sender stops first, so the publishes the publisher fails now are not retried
    const outboxClosed = this.#outbox.close()
    this.#publisher.close()
    await outboxClosed
    await this.#consuming?.catch(() => {})
    await this.relayNats.close()
    await this.nats.close()
  }
}

/** The error to fail with when the stream, which now starts at `first`, no longer holds `next`. */
function lostError(next: number, first: number): Error | undefined {
  if (first <= next) return undefined
  return new Error(
    `cannot catch up: this node applied up to ${next - 1}, the stream now starts at ${first} (the node was away longer than the stream keeps transactions)`,
  )
}

function isTooLarge(error: unknown): boolean {
  return /max.?payload/i.test(String((error as Error)?.message ?? ''))
}
