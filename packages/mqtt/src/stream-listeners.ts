/**
 * The stream events of a broker's connections ('data', 'error', 'end', 'close') go to four listeners the
 * broker makes once, instead of four closures (and their wrappers) per connection: an idle connection
 * holds none. A listener finds its connection through the stream it is called on (a WeakMap, so a
 * stream that is gone takes its entry along). What a connection's handler throws goes to its fault
 * barrier, as with `guarded()`.
 */
import type { Duplex } from 'node:stream'
import type { FaultSink } from './fault.js'

/** The connection a stream's events go to. */
export interface StreamOwner extends FaultSink {
  /** Bytes arrived. */
  onData(chunk: Buffer): void
  /** The stream failed, ended or closed: the connection closes with `reason`. */
  close(reason: string): void
}

type Listener = (this: Duplex, arg?: unknown) => void

export class StreamListeners {
  private readonly owners = new WeakMap<Duplex, StreamOwner>()
  private readonly onData: Listener
  private readonly onError: Listener
  private readonly onEnd: Listener
  private readonly onClose: Listener

  constructor() {
    const owners = this.owners
    // `this` is the stream emitting the event (EventEmitter calls a listener on its emitter).
    const closeWith = (stream: Duplex, reason: string): void => {
      const owner = owners.get(stream)
      if (owner === undefined) return
      try {
        owner.close(reason)
      } catch (err) {
        owner.fault(err)
      }
    }
    this.onData = function (this: Duplex, chunk) {
      const owner = owners.get(this)
      if (owner === undefined) return
      try {
        owner.onData(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer))
      } catch (err) {
        owner.fault(err)
      }
    }
    this.onError = function (this: Duplex, err) {
      closeWith(this, `stream error: ${(err as Error).message}`)
    }
    this.onEnd = function (this: Duplex) {
      closeWith(this, 'stream ended')
    }
    this.onClose = function (this: Duplex) {
      closeWith(this, 'stream closed')
    }
  }

  /** Routes `stream`'s events to `owner` from now on. */
  attach(stream: Duplex, owner: StreamOwner): void {
    this.owners.set(stream, owner)
    stream.on('data', this.onData)
    stream.on('error', this.onError)
    stream.on('end', this.onEnd)
    stream.on('close', this.onClose)
  }
}
