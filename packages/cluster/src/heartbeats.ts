import type { NatsConnection, Subscription } from '@nats-io/transport-node'

const encoder = new TextEncoder()
const decoder = new TextDecoder()
/** How often each node says it is alive. */
const HEARTBEAT_MS = 1000

/**
 * Node liveness over core NATS: every node publishes its name on `<prefix>.ctl.alive` every second and
 * notes when it last heard each node (itself included: its own heartbeat coming back shows that this
 * node's view is current, not stalled behind a busy event loop or a lost NATS link).
 */
export class Heartbeats {
  readonly #seen = new Map<string, number>()
  #timer: NodeJS.Timeout | undefined
  #sub: Subscription | undefined

  constructor(
    private readonly nats: NatsConnection,
    private readonly prefix: string,
    private readonly nodeName: string,
  ) {}

  start(): void {
    if (this.#sub !== undefined) return
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

  /** When `node` was last heard (ms since the epoch, this process's clock); undefined: never. */
  lastHeard(node: string): number | undefined {
    return this.#seen.get(node)
  }

  /** Whether this node's own heartbeat came back within `ms` (its view of the others is current). */
  current(ms: number): boolean {
    const own = this.#seen.get(this.nodeName)
    return own !== undefined && Date.now() - own < ms
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#sub?.unsubscribe()
  }
}
