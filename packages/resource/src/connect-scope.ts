import { AsyncLocalStorage } from 'node:async_hooks'
import type { ResourceEvent } from './types.js'

interface Closable {
  close(): void
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ value: undefined, done: true })

/**
 * What one connection opened while its resource's `connect()` ran: subscriptions and event streams
 * (registered through the runtime while this scope is the active async context), the incoming
 * messages handed to it, and an AbortSignal. Closing the scope closes all of them, so a generator
 * blocked on any of them wakes up and finishes instead of waiting for its next event.
 */
export class ConnectScope {
  readonly #closables = new Set<Closable>()
  readonly #controller = new AbortController()
  readonly #closed: Promise<IteratorReturnResult<undefined>>
  #resolveClosed!: (result: IteratorReturnResult<undefined>) => void

  constructor() {
    this.#closed = new Promise((resolve) => {
      this.#resolveClosed = resolve
    })
  }

  get signal(): AbortSignal {
    return this.#controller.signal
  }

  get isClosed(): boolean {
    return this.#controller.signal.aborted
  }

  /** Resolves with a done result when the scope closes (to race against pending reads). */
  get closed(): Promise<IteratorReturnResult<undefined>> {
    return this.#closed
  }

  add(closable: Closable): void {
    if (this.isClosed) closable.close()
    else this.#closables.add(closable)
  }

  close(): void {
    if (this.isClosed) return
    this.#controller.abort()
    this.#resolveClosed(DONE)
    for (const closable of this.#closables) {
      try {
        closable.close()
      } catch {
        // one failing close must not keep the others open
      }
    }
    this.#closables.clear()
  }

  /** `incoming` as the resource sees it: a pending read ends (done) when the connection closes. */
  incoming(source: AsyncIterable<unknown>): AsyncIterable<unknown> {
    const scope = this
    return {
      [Symbol.asyncIterator](): AsyncIterator<unknown> {
        const iterator = source[Symbol.asyncIterator]()
        scope.add({ close: () => void iterator.return?.()?.catch?.(() => {}) })
        return {
          next: () =>
            scope.isClosed ? Promise.resolve(DONE) : Promise.race([iterator.next(), scope.closed]),
          return: (value?: unknown) => {
            void iterator.return?.(value)?.catch?.(() => {})
            return Promise.resolve(DONE)
          },
        }
      },
    }
  }
}

/** The connection scope in effect for the code running now (a connect() body and what it awaits). */
export class ConnectScopes {
  readonly #storage = new AsyncLocalStorage<ConnectScope>()

  run<T>(scope: ConnectScope, fn: () => T): T {
    return this.#storage.run(scope, fn)
  }

  /** Ties `closable` to the connection whose connect() is running, if any. */
  track(closable: Closable): void {
    this.#storage.getStore()?.add(closable)
  }
}

/**
 * What the runtime returns for a connect() that is an async generator (or any async iterable other
 * than an EventStream). `return()` (the transport's close: WebSocket close, SSE client gone) settles
 * a pending `next()` at once, closes the scope (the generator's subscriptions, streams and incoming
 * messages) and calls `return()` on the generator, which then runs its `finally` blocks.
 */
export class ConnectIterator implements AsyncIterableIterator<ResourceEvent> {
  readonly #source: AsyncIterable<unknown>
  readonly #toEvent: (value: unknown) => ResourceEvent
  readonly #scope: ConnectScope
  readonly #scopes: ConnectScopes
  readonly #onError: (error: unknown) => void
  #iterator: AsyncIterator<unknown> | undefined

  constructor(
    source: AsyncIterable<unknown>,
    toEvent: (value: unknown) => ResourceEvent,
    scope: ConnectScope,
    scopes: ConnectScopes,
    onError: (error: unknown) => void,
  ) {
    this.#source = source
    this.#toEvent = toEvent
    this.#scope = scope
    this.#scopes = scopes
    this.#onError = onError
  }

  [Symbol.asyncIterator](): this {
    return this
  }

  next(): Promise<IteratorResult<ResourceEvent>> {
    const scope = this.#scope
    if (scope.isClosed) return Promise.resolve(DONE)
    let read: Promise<IteratorResult<unknown>>
    try {
      // The generator body runs (and resumes after its awaits) inside the scope.
      read = this.#scopes.run(scope, () => {
        this.#iterator ??= this.#source[Symbol.asyncIterator]()
        return this.#iterator.next()
      })
    } catch (error) {
      this.#end()
      return Promise.reject(error)
    }
    const mapped = read.then(
      (result): IteratorResult<ResourceEvent> => {
        if (result.done) {
          this.#end()
          return DONE
        }
        return { value: this.#toEvent(result.value), done: false }
      },
      (error) => {
        this.#end()
        throw error
      },
    )
    return Promise.race([mapped, scope.closed])
  }

  return(): Promise<IteratorResult<ResourceEvent>> {
    this.#close()
    return Promise.resolve(DONE)
  }

  throw(): Promise<IteratorResult<ResourceEvent>> {
    this.#close()
    return Promise.resolve(DONE)
  }

  /** The consumer is gone: stop everything the generator opened, then let the generator finish. */
  #close(): void {
    if (this.#scope.isClosed) return
    this.#scope.close()
    const iterator = this.#iterator
    if (iterator?.return) {
      try {
        // Queued behind a pending next() by the language; the scope closing above unblocks that.
        void Promise.resolve(iterator.return()).catch(this.#onError)
      } catch (error) {
        this.#onError(error)
      }
    }
  }

  /** The generator finished by itself: release whatever it left open. */
  #end(): void {
    this.#scope.close()
  }
}
