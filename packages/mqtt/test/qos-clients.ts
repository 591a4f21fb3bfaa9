/**
 * MQTT 3.1.1 clients that keep their session state across reconnects exactly as the specification asks
 * (section 4.3, 4.4), for crash tests: a publisher that resends unacknowledged PUBLISH (DUP) and PUBREL
 * after reconnecting, and a receiver that keeps inbound QoS 2 packet ids until PUBREL and counts what
 * reaches its application.
 */
import * as net from 'node:net'
import mqttPacket from 'mqtt-packet'

type Packet = mqttPacket.Packet

/** One TCP connection with an mqtt-packet parser; closed for good on the first error or end. */
class Link {
  readonly socket: net.Socket
  closed = false
  private readonly closedWaiters: (() => void)[] = []

  constructor(port: number, onPacket: (p: Packet) => void) {
    const parser = mqttPacket.parser({ protocolVersion: 4 })
    parser.on('packet', onPacket)
    parser.on('error', () => this.socket.destroy())
    this.socket = net.connect(port, '127.0.0.1')
    this.socket.on('data', (chunk) => parser.parse(chunk))
    this.socket.on('error', () => {})
    this.socket.on('close', () => {
      this.closed = true
      for (const w of this.closedWaiters.splice(0)) w()
    })
  }

  send(p: Packet): void {
    if (!this.closed) this.socket.write(mqttPacket.generate(p, { protocolVersion: 4 }))
  }

  whenClosed(): Promise<void> {
    return this.closed ? Promise.resolve() : new Promise((resolve) => this.closedWaiters.push(resolve))
  }
}

abstract class DurableClient {
  protected link: Link | null = null
  private connack: ((sessionPresent: boolean) => void) | null = null
  /** Reconnects after the first whose CONNACK said the session was not present (a lost session). */
  lostSessions = 0
  connects = 0

  constructor(readonly clientId: string) {}

  get connected(): boolean {
    return this.link !== null && !this.link.closed && this.connack === null
  }

  /** Connects with clean session 0; rejects when the connection closes before CONNACK. */
  async connect(port: number, timeoutMs = 5000): Promise<boolean> {
    this.link?.socket.destroy()
    const link = new Link(port, (p) => this.onPacket(link, p))
    this.link = link
    const present = await new Promise<boolean>((resolve, reject) => {
      const timer = setTimeout(() => {
        link.socket.destroy()
        reject(new Error(`${this.clientId}: no CONNACK`))
      }, timeoutMs)
      this.connack = (sp) => {
        clearTimeout(timer)
        resolve(sp)
      }
      link.whenClosed().then(() => {
        clearTimeout(timer)
        reject(new Error(`${this.clientId}: closed before CONNACK`))
      })
      link.socket.once('connect', () =>
        link.send({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clean: false,
          clientId: this.clientId,
          keepalive: 0,
        }),
      )
    }).finally(() => {
      this.connack = null
    })
    if (this.connects++ > 0 && !present) this.lostSessions++
    this.resumed(link)
    return present
  }

  /** Retries `connect` until it succeeds (the broker may still be starting) or `timeoutMs` passes. */
  async reconnect(port: () => number, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      try {
        await this.connect(port())
        return
      } catch (err) {
        if (Date.now() > deadline) throw err
        await new Promise((r) => setTimeout(r, 50))
      }
    }
  }

  whenClosed(): Promise<void> {
    return this.link?.whenClosed() ?? Promise.resolve()
  }

  end(): void {
    this.link?.socket.destroy()
  }

  private onPacket(link: Link, p: Packet): void {
    if (link !== this.link) return
    if (p.cmd === 'connack') {
      this.connack?.(p.sessionPresent)
      return
    }
    this.handle(link, p)
  }

  /** After CONNACK: resend what the session state says must be resent. */
  protected abstract resumed(link: Link): void
  protected abstract handle(link: Link, p: Packet): void
}

interface Outgoing {
  id: number
  topic: string
  payload: string
  qos: 1 | 2
  state: 'publish' | 'pubrel'
  acked: () => void
}

/** Publishes QoS 1/2 messages with a bounded window; everything unacknowledged is resent on reconnect. */
export class ResumingPublisher extends DurableClient {
  /** Unfinished flows in the order they started (Map order), resent in that order [MQTT-4.4.0-1]. */
  private readonly inflight = new Map<number, Outgoing>()
  private nextId = 1
  private readonly idleWaiters: (() => void)[] = []
  /** Payloads whose PUBACK / PUBREC arrived: the broker owns them. */
  readonly acknowledged = new Map<string, 1 | 2>()

  get pending(): number {
    return this.inflight.size
  }

  /** Resolves once the broker acknowledged it (PUBACK, or PUBREC for QoS 2), across any reconnects. */
  publish(topic: string, payload: string, qos: 1 | 2): Promise<void> {
    let id = this.nextId
    while (this.inflight.has(id)) id = id === 65535 ? 1 : id + 1
    this.nextId = id === 65535 ? 1 : id + 1
    return new Promise((acked) => {
      this.inflight.set(id, { id, topic, payload, qos, state: 'publish', acked })
      if (this.connected) this.sendPublish(this.link!, this.inflight.get(id)!, false)
    })
  }

  /** Resolves when no flow is unfinished (every PUBACK and PUBCOMP arrived). */
  idle(): Promise<void> {
    return this.inflight.size === 0 ? Promise.resolve() : new Promise((r) => this.idleWaiters.push(r))
  }

  private sendPublish(link: Link, m: Outgoing, dup: boolean): void {
    link.send({
      cmd: 'publish',
      topic: m.topic,
      payload: m.payload,
      qos: m.qos,
      messageId: m.id,
      retain: false,
      dup,
    })
  }

  protected resumed(link: Link): void {
    for (const m of this.inflight.values()) {
      if (m.state === 'publish') this.sendPublish(link, m, true)
      else link.send({ cmd: 'pubrel', messageId: m.id })
    }
  }

  protected handle(link: Link, p: Packet): void {
    if (p.cmd === 'puback' || p.cmd === 'pubrec' || p.cmd === 'pubcomp') {
      const m = this.inflight.get(p.messageId!)
      if (m === undefined) return
      if (p.cmd === 'pubrec') {
        if (m.qos !== 2) return
        m.state = 'pubrel'
        this.acknowledged.set(m.payload, 2)
        m.acked()
        link.send({ cmd: 'pubrel', messageId: m.id })
        return
      }
      if (p.cmd === 'puback' && m.qos === 1) {
        this.acknowledged.set(m.payload, 1)
        m.acked()
      }
      if ((p.cmd === 'puback' && m.qos === 1) || (p.cmd === 'pubcomp' && m.state === 'pubrel')) {
        this.inflight.delete(m.id)
        if (this.inflight.size === 0) for (const w of this.idleWaiters.splice(0)) w()
      }
    }
  }
}

/** Subscribes, acknowledges everything, and counts each payload its application receives. */
export class ExactReceiver extends DurableClient {
  /** Inbound QoS 2 ids received and not yet released (PUBREL): a PUBLISH with one of them is a resend. */
  private readonly qos2 = new Set<number>()
  /** Application deliveries per payload. */
  readonly received = new Map<string, number>()
  private readonly waiters: { payload: string; resolve: () => void }[] = []
  private suback: (() => void) | null = null

  /** SUBSCRIBE on the current connection; resolves on SUBACK. */
  subscribe(filter: string, qos: 0 | 1 | 2): Promise<void> {
    return new Promise((resolve) => {
      this.suback = resolve
      this.link!.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos }] })
    })
  }

  /** Resolves once `payload` reached the application. */
  receivedPayload(payload: string, timeoutMs = 20_000): Promise<void> {
    if (this.received.has(payload)) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${payload} not received`)), timeoutMs)
      this.waiters.push({
        payload,
        resolve: () => {
          clearTimeout(timer)
          resolve()
        },
      })
    })
  }

  protected resumed(): void {}

  protected handle(link: Link, p: Packet): void {
    if (p.cmd === 'suback') {
      this.suback?.()
      this.suback = null
      return
    }
    if (p.cmd === 'pubrel') {
      this.qos2.delete(p.messageId!)
      link.send({ cmd: 'pubcomp', messageId: p.messageId! })
      return
    }
    if (p.cmd !== 'publish') return
    const payload = p.payload.toString()
    if (p.qos === 2) {
      // [MQTT-4.3.3-2] a PUBLISH whose id awaits PUBREL is a resend of the same message: not delivered again.
      if (!this.qos2.has(p.messageId!)) {
        this.qos2.add(p.messageId!)
        this.deliver(payload)
      }
      link.send({ cmd: 'pubrec', messageId: p.messageId! })
      return
    }
    this.deliver(payload)
    if (p.qos === 1) link.send({ cmd: 'puback', messageId: p.messageId! })
  }

  private deliver(payload: string): void {
    this.received.set(payload, (this.received.get(payload) ?? 0) + 1)
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!
      if (w.payload === payload) {
        this.waiters.splice(i, 1)
        w.resolve()
      }
    }
  }
}
