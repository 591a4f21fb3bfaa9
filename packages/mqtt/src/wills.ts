/**
 * Wills (MQTT 5 section 3.1.3.2, 3.1.1 section 3.1.2.5): persisted at CONNECT, published when their
 * connection closes without DISCONNECT (now, or after the Will Delay Interval), cancelled when the session
 * resumes in time, published at once when the session ends, and published after a restart when the process
 * stopped with one pending. A will is published as its owner with the owner's current rights, and deleted
 * in the same transaction.
 */
import type { Key, Runtime, StateStore } from './runtime.js'
import { type StoredWill, WILLS_STORE } from './session-store.js'
import type { ClientOwnership, Logger } from './types.js'

const MAX_TIMER_MS = 2 ** 31 - 1

interface PendingWill {
  key: Key
  will: StoredWill
  timer: NodeJS.Timeout | null
  /** Its record's write (dueAt) when the will was triggered here. */
  written: Promise<unknown> | undefined
}

/** What the will keeper needs of the broker. */
export interface WillHost {
  readonly runtime: Pick<Runtime, 'findUser' | 'anonymous' | 'publish'>
  readonly logger: Logger
  state<V = unknown>(name: string): StateStore<V>
  track<T>(p: Promise<T>): Promise<T>
}

export class WillKeeper {
  /** Delayed wills by client id. */
  private readonly pending = new Map<string, PendingWill[]>()

  constructor(
    private readonly host: WillHost,
    /** A cluster: wills of other nodes' clients are theirs to publish. */
    private readonly ownership?: ClientOwnership,
  ) {}

  /** Persists a CONNECT's will (before CONNACK). */
  persist(key: Key, will: StoredWill): Promise<void> {
    return this.host.track(this.host.state<StoredWill>(WILLS_STORE).put(key, will))
  }

  /** A will that is never to be published (normal DISCONNECT, its user deleted); resolves once committed. */
  discard(key: Key): Promise<unknown> {
    return this.host.track(this.host.state(WILLS_STORE).delete(key))
  }

  /** The connection closed without DISCONNECT: publish now or after the Will Delay Interval. */
  trigger(key: Key, will: StoredWill, sessionEnds: boolean, sessionExpiryMs: number): void {
    const delayMs = sessionEnds ? 0 : Math.min(will.delay * 1000, sessionExpiryMs)
    if (delayMs <= 0) {
      this.publish(key, will)
      return
    }
    will.dueAt = Date.now() + delayMs
    const written = this.host.track(this.host.state<StoredWill>(WILLS_STORE).put(key, will))
    this.schedule(key, will, written)
  }

  /** A new connection resumed the session before the delay passed: the will is not sent [MQTT-3.1.3-9]. */
  cancel(clientId: string): void {
    const list = this.pending.get(clientId)
    this.pending.delete(clientId)
    const store = this.host.state(WILLS_STORE)
    for (const w of list ?? []) {
      if (w.timer) clearTimeout(w.timer)
      this.host.track(store.delete(w.key))
    }
    if (this.ownership === undefined) return
    // A cluster: the delayed will may be another node's (the connection closed there); deleting its
    // record makes that node's publication fail its condition.
    for (const { key } of store.entries({ prefix: clientId })) {
      if (Array.isArray(key) && key[0] === clientId && !list?.some((w) => (w.key as unknown[])[1] === key[1]))
        this.host.track(store.delete(key))
    }
  }

  /** The session ended (clean start, expiry): delayed wills go out now. */
  publishNow(clientId: string): void {
    const list = this.pending.get(clientId)
    if (!list) return
    this.pending.delete(clientId)
    for (const w of list) {
      if (w.timer) clearTimeout(w.timer)
      this.send(w)
    }
  }

  /** A deleted user's delayed wills are never published. */
  discardWillsOf(username: string): void {
    const store = this.host.state(WILLS_STORE)
    for (const [clientId, list] of [...this.pending]) {
      const keep = list.filter((w) => w.will.username !== username)
      for (const w of list) {
        if (w.will.username !== username) continue
        if (w.timer) clearTimeout(w.timer)
        this.host.track(store.delete(w.key))
      }
      if (keep.length === 0) this.pending.delete(clientId)
      else this.pending.set(clientId, keep)
    }
  }

  /** Start-up: the wills the previous process left, due now or later. */
  restore(now: number): void {
    let wills: { key: Key; value: StoredWill }[]
    try {
      wills = [...this.host.state<StoredWill>(WILLS_STORE).entries()]
    } catch (err) {
      this.host.logger.error({ err }, 'mqtt: cannot read persisted sessions')
      return
    }
    for (const { key, value } of wills) {
      // a cluster: only the wills of clients this node serves (the others are their nodes' to publish)
      if (!value || (this.ownership !== undefined && !this.ownership.owns(value.clientId))) continue
      this.schedule(key, { ...value, dueAt: value.dueAt ?? now + value.delay * 1000 })
    }
  }

  /**
   * A cluster: the wills of `clientId`, whose node died (last heard at `offlineSince`), are this node's to
   * publish: a will whose connection was still open is due its delay (at most the session's expiry) after
   * that. Published once: the conditional delete in `publish` loses to a resumed session's cancel.
   */
  adopt(clientId: string, offlineSince: number, sessionExpiryMs: number): void {
    const store = this.host.state<StoredWill>(WILLS_STORE)
    const known = this.pending.get(clientId) ?? []
    for (const { key, value } of store.entries({ prefix: clientId })) {
      if (!value || value.clientId !== clientId) continue
      if (known.some((w) => (w.key as unknown[])[1] === (key as unknown[])[1])) continue
      const delayMs = Math.min(value.delay * 1000, sessionExpiryMs)
      this.schedule(key, { ...value, dueAt: value.dueAt ?? offlineSince + delayMs })
    }
  }

  /** Broker shutdown: timers stop; the wills stay persisted and are published after the next start. */
  close(): void {
    for (const list of this.pending.values()) for (const w of list) if (w.timer) clearTimeout(w.timer)
    this.pending.clear()
  }

  private schedule(key: Key, will: StoredWill, written?: Promise<unknown>): void {
    const list = this.pending.get(will.clientId) ?? []
    const entry: PendingWill = { key, will, timer: null, written }
    const remaining = (will.dueAt ?? Date.now()) - Date.now()
    if (remaining > 0) {
      entry.timer = setTimeout(() => this.fire(entry), Math.min(remaining, MAX_TIMER_MS))
      entry.timer.unref?.()
      list.push(entry)
      this.pending.set(will.clientId, list)
    } else {
      this.publish(key, will)
    }
  }

  private fire(entry: PendingWill): void {
    const list = this.pending.get(entry.will.clientId)
    if (list) {
      const i = list.indexOf(entry)
      if (i >= 0) list.splice(i, 1)
      if (list.length === 0) this.pending.delete(entry.will.clientId)
    }
    this.send(entry)
  }

  /** The will's version is read when it goes out: its dueAt write first (the condition names it). */
  private send(entry: PendingWill): void {
    const go = () => this.publish(entry.key, entry.will)
    if (entry.written === undefined) go()
    else this.host.track(entry.written.then(go, go))
  }

  /**
   * Publishes a will as its owner; the will record is deleted in the same transaction (published once).
   * Background work: close() waits for it through track(), which also logs a failure.
   */
  private publish(key: Key, will: StoredWill): void {
    const host = this.host
    const runtime = host.runtime
    const work = (async () => {
      try {
        // With its owner's current rights, or not at all: a deleted owner's will is never sent as anonymous.
        const user = will.username !== null ? await runtime.findUser(will.username) : runtime.anonymous()
        if (user === null && will.username !== null) {
          host.logger.info(`mqtt: will of ${will.clientId} dropped: user ${will.username} no longer exists`)
          await host.state(WILLS_STORE).delete(key)
          return
        }
        // Sent once: the will record goes in the same commit, on condition that nobody (another node
        // of a cluster, a resumed session) changed or deleted it meanwhile.
        const version = host.state(WILLS_STORE).version(key)
        if (version === undefined) {
          host.logger.info(`mqtt: will of ${will.clientId} not published: already published or cancelled`)
          return
        }
        const meta: Record<string, unknown> = { qos: will.qos, clientId: will.clientId }
        if (will.properties) meta.properties = will.properties
        await runtime.publish(
          will.topic,
          {
            payload: Buffer.from(will.payload),
            retain: will.retain,
            qos: will.qos,
            ...(will.contentType !== undefined ? { contentType: will.contentType } : {}),
            meta,
          },
          { user, transport: 'mqtt', clientId: will.clientId },
          { atomic: [{ store: WILLS_STORE, key, value: undefined, ifVersion: version }] },
        )
      } catch (err) {
        if ((err as { code?: unknown })?.code === 'CONFLICT') {
          host.logger.info(`mqtt: will of ${will.clientId} not published: published or cancelled elsewhere`)
          return
        }
        host.logger.warn({ err }, `mqtt: will of ${will.clientId} on ${will.topic} refused`)
        await host.state(WILLS_STORE).delete(key)
      }
    })()
    host.track(work)
  }
}
