import type { ChangeEvent } from '@proj/storage'
import type { RuntimeEvent } from './event.js'
import type { PublishResult } from './types.js'

/**
 * The result of a committed publish. Its `event` is made on first read: a broker acknowledging a
 * publish never reads it, so no event is built for a write that nobody subscribed to.
 */
export class CommittedPublish implements PublishResult {
  readonly #change: ChangeEvent
  readonly #toEvent: (change: ChangeEvent) => RuntimeEvent | null

  constructor(change: ChangeEvent, toEvent: (change: ChangeEvent) => RuntimeEvent | null) {
    this.#change = change
    this.#toEvent = toEvent
  }

  get event(): RuntimeEvent | undefined {
    return this.#toEvent(this.#change) ?? undefined
  }
}
