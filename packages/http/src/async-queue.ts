/**
 * A push-to-pull bridge: WebSocket messages are pushed in, the runtime's connect() pulls them as an
 * AsyncIterable. `onDrain`/`onHigh` let the caller pause the socket while the consumer lags, so an
 * unread incoming queue never grows without bound.
 */
export interface AsyncQueueOptions {
  /** Called when the queue length reaches highWaterMark (pause the producer). */
  onHigh?: () => void
  /** Called when the queue drains below highWaterMark again (resume the producer). */
  onDrain?: () => void
  highWaterMark?: number
}

export class AsyncQueue<T> implements AsyncIterable<T> {
  readonly #items: T[] = []
  readonly #waiters: ((result: IteratorResult<T>) => void)[] = []
  readonly #options: AsyncQueueOptions
  readonly #highWaterMark: number
  #ended = false
  #high = false

  constructor(options: AsyncQueueOptions = {}) {
    this.#options = options
    this.#highWaterMark = options.highWaterMark ?? 64
  }

  get length(): number {
    return this.#items.length
  }

  push(item: T): void {
    if (this.#ended) return
    const waiter = this.#waiters.shift()
    if (waiter) {
      waiter({ value: item, done: false })
      return
    }
    this.#items.push(item)
    if (!this.#high && this.#items.length >= this.#highWaterMark) {
      this.#high = true
      this.#options.onHigh?.()
    }
  }

  /** No more items: pending and later reads finish once the buffered items are consumed. */
  end(): void {
    if (this.#ended) return
    this.#ended = true
    for (const waiter of this.#waiters.splice(0)) waiter({ value: undefined, done: true })
  }

  #next(): Promise<IteratorResult<T>> {
    if (this.#items.length > 0) {
      const value = this.#items.shift() as T
      if (this.#high && this.#items.length < this.#highWaterMark / 2) {
        this.#high = false
        this.#options.onDrain?.()
      }
      return Promise.resolve({ value, done: false })
    }
    if (this.#ended) return Promise.resolve({ value: undefined, done: true })
    return new Promise((resolve) => this.#waiters.push(resolve))
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.#next(),
      return: () => {
        this.end()
        this.#items.length = 0
        return Promise.resolve({ value: undefined, done: true })
      },
    }
  }
}
