import type { AddressInfo, Server as NetServer, Socket } from 'node:net'
import { ListenError } from './errors.js'

export type ListenerName = 'mqtt' | 'mqtts' | 'http' | 'https'

/** Where one listener accepts connections; printed at start and returned by `Server.listeners`. */
export interface ListenerInfo {
  name: ListenerName
  /** The configuration key of its port (`mqtt.network.port`). */
  key: string
  /** The bound address (`::`, `0.0.0.0`, `127.0.0.1`). */
  host: string
  port: number
  /** A URL a local client can use (`mqtt://localhost:1883`). */
  url: string
  /** What it serves: `mqtt`, `rest`, `ws`, `sse`, `mqtt-ws`. */
  services: string[]
}

const SCHEMES: Record<ListenerName, string> = { mqtt: 'mqtt', mqtts: 'mqtts', http: 'http', https: 'https' }

/** A server that knows its open sockets, so shutdown can wait for them and then cut the rest. */
export class TrackedListener {
  readonly sockets = new Set<Socket>()
  info: ListenerInfo | undefined
  onError: ((error: Error) => void) | undefined
  /** Bytes of connections already closed; open ones are read from their sockets when asked. */
  private closedRead = 0
  private closedWritten = 0

  constructor(
    readonly name: ListenerName,
    readonly key: string,
    readonly server: NetServer,
    readonly services: string[],
  ) {
    // after listen(): a server error (EMFILE on accept, ...) is logged by the owner, never fatal
    server.on('error', (error) => this.onError?.(error))
    // One 'close' listener for all of this server's sockets (called on the socket), not a closure each.
    const listener = this
    const onClose = function (this: Socket): void {
      listener.sockets.delete(this)
      listener.closedRead += this.bytesRead
      listener.closedWritten += this.bytesWritten
    }
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket)
      socket.on('close', onClose)
    })
  }

  /** Binds; rejects with ListenError naming the config key on EADDRINUSE, EACCES, ... */
  listen(port: number, host: string | null): Promise<ListenerInfo> {
    return new Promise((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        reject(
          new ListenError(
            `${this.key}: cannot listen on ${host ?? '*'}:${port} (${error.code ?? error.message})`,
            {
              cause: error,
            },
          ),
        )
      }
      this.server.prependOnceListener('error', onError)
      this.server.listen(port, host ?? undefined, () => {
        this.server.off('error', onError)
        const address = this.server.address() as AddressInfo
        const local =
          address.address === '::' || address.address === '0.0.0.0' ? 'localhost' : address.address
        const urlHost = local.includes(':') ? `[${local}]` : local
        this.info = {
          name: this.name,
          key: this.key,
          host: address.address,
          port: address.port,
          url: `${SCHEMES[this.name]}://${urlHost}:${address.port}`,
          services: this.services,
        }
        resolve(this.info)
      })
    })
  }

  /** Bytes received and sent on this listener's connections since it started (TLS: the encrypted bytes). */
  bytes(): { read: number; written: number } {
    let read = this.closedRead
    let written = this.closedWritten
    for (const socket of this.sockets) {
      read += socket.bytesRead
      written += socket.bytesWritten
    }
    return { read, written }
  }

  /** Stops accepting new connections at once; resolves when the open ones are gone. */
  stopAccepting(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) return resolve()
      this.server.close(() => resolve())
      // HTTP keep-alive sockets with no request in flight would otherwise hold close() open
      ;(this.server as NetServer & { closeIdleConnections?: () => void }).closeIdleConnections?.()
    })
  }

  /** Cuts every connection still open (after the grace period). */
  destroyAll(): void {
    for (const socket of this.sockets) socket.destroy()
  }
}
