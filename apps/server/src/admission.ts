import { BlockList, isIP, type Server as NetServer, type Socket } from 'node:net'
import { sourceKey } from '@proj/resource'

/** Per-address connection limits; one instance is shared by every listener of a server. */
export interface AdmissionOptions {
  /** Open connections per address (IPv6: per /64), all listeners together; 0 = unlimited. */
  maxPerAddress: number
  /** New connections per second per address, as a token bucket holding one second's worth; 0 = unlimited. */
  ratePerAddress: number
  /** Addresses and subnets (`127.0.0.0/8`, `::1`, `10.1.0.0/16`) the limits do not apply to. */
  exempt: readonly string[]
  /** Told about each refused connection (from the accept path: keep it cheap). */
  onRefused?: (refusal: Refusal) => void
  /** Clock in ms, for tests. Default `performance.now`. */
  now?: () => number
}

export interface Refusal {
  /** The listener's name (`mqtt`, `mqtts`, `http`, `https`). */
  listener: string
  address: string
  reason: 'rate' | 'concurrent'
}

interface AddressState {
  open: number
  tokens: number
  /** When `tokens` was last brought up to date (ms). */
  at: number
}

/** Entries with no open connection and a full bucket carry no information: dropped every so often. */
const SWEEP_MS = 10_000
/** Addresses whose exemption is remembered. */
const CACHE_LIMIT = 10_000

/**
 * Admits or refuses each new TCP connection by its peer address before anything is allocated for it: no
 * TLS handshake, no HTTP parser, no MQTT connection. A flood from one address (30 000 connections a
 * second took a HarperDB cluster down) costs the server an accept and a close per connection.
 *
 * @example
 * const admission = new ConnectionAdmission({ maxPerAddress: 1000, ratePerAddress: 100, exempt: ['127.0.0.0/8'] })
 * admission.guard(tlsServer, 'mqtts')
 */
export class ConnectionAdmission {
  readonly #states = new Map<string, AddressState>()
  readonly #exempt = new BlockList()
  /** BlockList.check costs microseconds (a native call per address); the answer per address is kept. */
  readonly #exemptCache = new Map<string, boolean>()
  readonly #options: AdmissionOptions
  readonly #now: () => number
  readonly #sweeper: NodeJS.Timeout
  /** The address key each admitted socket counts against, for the one shared 'close' listener. */
  readonly #keys = new WeakMap<Socket, string>()
  readonly #onClose: (this: Socket) => void

  constructor(options: AdmissionOptions) {
    this.#options = options
    const keys = this.#keys
    const admission = this
    this.#onClose = function (this: Socket): void {
      const key = keys.get(this)
      if (key !== undefined) admission.release(key)
    }
    this.#now = options.now ?? (() => performance.now())
    for (const entry of options.exempt) addExempt(this.#exempt, entry)
    this.#sweeper = setInterval(() => this.sweep(), SWEEP_MS)
    this.#sweeper.unref()
  }

  /** Whether the limits are on at all (both 0: every connection is admitted without bookkeeping). */
  get enabled(): boolean {
    return this.#options.maxPerAddress > 0 || this.#options.ratePerAddress > 0
  }

  /**
   * Puts the admission check in front of every `connection` listener of `server`. Node's servers allocate
   * in their own listeners (tls.Server wraps the socket and starts the handshake, http.Server attaches a
   * parser), so the check must run before any of them, including ones added later: it wraps `emit`.
   */
  guard(server: NetServer, listener: string): void {
    if (!this.enabled) return
    const emit = server.emit
    const admission = this
    server.emit = function (this: NetServer, event: string | symbol, ...args: unknown[]): boolean {
      if (event === 'connection' && !admission.admit(args[0] as Socket, listener)) return false
      return Reflect.apply(emit, this, [event, ...args]) as boolean
    } as NetServer['emit']
  }

  /** Admits `socket` (counting it until it closes) or refuses it with a reset; true when admitted. */
  admit(socket: Socket, listener: string): boolean {
    const address = socket.remoteAddress
    if (address === undefined) return true
    if (this.isExempt(address)) return true
    const key = sourceKey(address) ?? address
    const reason = this.take(key)
    if (reason !== undefined) {
      // A reset frees the socket at once and leaves no TIME_WAIT behind on this side.
      socket.resetAndDestroy()
      this.#options.onRefused?.({ listener, address, reason })
      return false
    }
    this.#keys.set(socket, key)
    socket.on('close', this.#onClose)
    return true
  }

  isExempt(address: string): boolean {
    let exempt = this.#exemptCache.get(address)
    if (exempt === undefined) {
      const family = isIP(address)
      exempt = family !== 0 && this.#exempt.check(address, family === 6 ? 'ipv6' : 'ipv4')
      // bounded: a flood from many addresses only clears the cache now and then
      if (this.#exemptCache.size >= CACHE_LIMIT) this.#exemptCache.clear()
      this.#exemptCache.set(address, exempt)
    }
    return exempt
  }

  /** Takes a place and a token for `key`; the reason when it has neither. */
  take(key: string): Refusal['reason'] | undefined {
    const { maxPerAddress: max, ratePerAddress: rate } = this.#options
    const now = this.#now()
    let state = this.#states.get(key)
    if (state === undefined) {
      state = { open: 0, tokens: rate, at: now }
      this.#states.set(key, state)
    }
    if (max > 0 && state.open >= max) return 'concurrent'
    if (rate > 0) {
      state.tokens = Math.min(rate, state.tokens + ((now - state.at) * rate) / 1000)
      state.at = now
      if (state.tokens < 1) return 'rate'
      state.tokens -= 1
    }
    state.open++
    return undefined
  }

  release(key: string): void {
    const state = this.#states.get(key)
    if (state !== undefined && state.open > 0) state.open--
  }

  /** Addresses with connections open or a bucket still refilling. */
  get tracked(): number {
    return this.#states.size
  }

  /** Forgets addresses that have nothing open and a full bucket again. */
  sweep(): void {
    const rate = this.#options.ratePerAddress
    const now = this.#now()
    for (const [key, state] of this.#states) {
      if (state.open > 0) continue
      if (rate > 0 && state.tokens + ((now - state.at) * rate) / 1000 < rate) continue
      this.#states.delete(key)
    }
  }

  close(): void {
    clearInterval(this.#sweeper)
  }
}

/** Adds `127.0.0.1`, `::1`, `10.0.0.0/8` or `fd00::/8` to a BlockList; throws on anything else. */
export function addExempt(list: BlockList, entry: string): void {
  const [address = '', prefix] = entry.trim().split('/')
  const family = isIP(address)
  if (family === 0) throw new Error(`'${entry}' is not an IP address or subnet`)
  const type = family === 6 ? 'ipv6' : 'ipv4'
  if (prefix === undefined) {
    list.addAddress(address, type)
    return
  }
  const bits = /^\d{1,3}$/.test(prefix) ? Number(prefix) : Number.NaN
  if (!(bits >= 0 && bits <= (family === 6 ? 128 : 32))) throw new Error(`'${entry}' has an invalid prefix`)
  list.addSubnet(address, bits, type)
}
