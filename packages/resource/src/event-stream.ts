import { EventEmitter } from 'node:events'
import type { ResourceEvent } from './types.js'

/**
 * What the default `connect()` returns: an AsyncIterable of events for the transport to write out,
 * with `send()` to push a value to the client and a `close` event when either side ends it.
 *
 * @example
 * const stream = new EventStream((value) => makeMessageEvent(value))
 * stream.on('close', () => subscription.close())
 * for await (const event of stream) ws.send(JSON.stringify(event))
 */
export class EventStream<E extends ResourceEvent = ResourceEvent>
  extends EventEmitter
  implements AsyncIterable<E>
{
  readonly #queue: E[] = []
  #waiting: ((result: IteratorResult<E>) => void) | undefined
  #closed = false
  readonly #toEvent: (value: unknown) => E

  constructor(toEvent: (value: unknown) => E) {
    super()
    this.#toEvent = toEvent
  }

  get closed(): boolean {
    return this.#closed
  }

  /** Queues an event for the consumer. Ignored after close. */
  push(event: E): void {
    if (this.#closed) return
    const waiting = this.#waiting
    if (waiting) {
      this.#waiting = undefined
      waiting({ value: event, done: false })
    } else {
      this.#queue.push(event)
    }
  }

  /** Sends a value to the client as a `message` event. */
  send(value: unknown): void {
    this.push(this.#toEvent(value))
  }

  /** Ends the stream: queued events are dropped, the iterator finishes, `close` is emitted once. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#queue.length = 0
    const waiting = this.#waiting
    this.#waiting = undefined
    waiting?.({ value: undefined, done: true })
    this.emit('close')
  }

  /** Events waiting for the consumer (a transport may close a stream that falls too far behind). */
  get queued(): number {
    return this.#queue.length
  }

  [Symbol.asyncIterator](): AsyncIterator<E> {
    return {
      next: () => {
        const event = this.#queue.shift()
        if (event !== undefined) return Promise.resolve({ value: event, done: false })
        if (this.#closed) return Promise.resolve({ value: undefined, done: true })
        return new Promise((resolve) => {
          this.#waiting = resolve
        })
      },
      return: () => {
        this.close()
        return Promise.resolve({ value: undefined, done: true })
      },
    }
  }
}
