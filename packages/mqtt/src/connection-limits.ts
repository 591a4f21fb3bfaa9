/**
 * The broker's connection limits: how many MQTT connections it serves at once (`maxConnections`) and how
 * many one user may hold (`maxConnectionsPerUser`). A place is taken when CONNECT arrives, before any
 * password is hashed, so a full broker answers CONNACK 0x97 (3.1.1: 0x03) cheaply instead of dropping the
 * socket, and given back when the connection closes. Sockets that never send CONNECT hold no place: the
 * connect timeout and the server's per-address limits deal with them.
 */
export class ConnectionLimits {
  #open = 0
  readonly #perUser = new Map<string, number>()

  constructor(
    /** 0 = unlimited. */
    readonly max: number,
    /** 0 = unlimited. */
    readonly maxPerUser: number,
  ) {}

  /** Connections holding a place. */
  get open(): number {
    return this.#open
  }

  /**
   * Takes a place; false when the broker is full. `replacing`: the client id is connected already and this
   * connection takes it over (the old one gives its place back), so a device whose half-open connection
   * still counts can always come back.
   */
  take(replacing: boolean): boolean {
    if (this.max > 0 && this.#open >= this.max && !replacing) return false
    this.#open++
    return true
  }

  give(): void {
    if (this.#open > 0) this.#open--
  }

  takeUser(username: string): boolean {
    const n = this.#perUser.get(username) ?? 0
    if (this.maxPerUser > 0 && n >= this.maxPerUser) return false
    this.#perUser.set(username, n + 1)
    return true
  }

  giveUser(username: string): void {
    const n = (this.#perUser.get(username) ?? 1) - 1
    if (n <= 0) this.#perUser.delete(username)
    else this.#perUser.set(username, n)
  }
}
