/**
 * `Runtime.publishWith`: a publish told to a listener instead of a promise. A plain topic's durable
 * publish (an MQTT QoS 1 message) is one object here, which is both the storage write's options and its
 * storage listener: no promise, resolver, closure or result object per message.
 */
import type { WriteListener, WriteOptions } from '@proj/storage'
import { toResourceError } from './storage-writes.js'
import type { PublishListener } from './types.js'

/** The storage options of one listened publish, and the storage listener that tells the publisher. */
export class ListenedPublish implements WriteOptions, WriteListener {
  // Every WriteOptions field, so each instance has the same shape (storage reads them all).
  readonly timestamp = undefined
  readonly nodeId = undefined
  readonly ifVersion = undefined
  readonly attachment = undefined

  constructor(
    readonly meta: Record<string, unknown>,
    readonly user: string | undefined,
    private readonly listener: PublishListener,
  ) {}

  writeSettled(error: unknown): void {
    this.listener.publishSettled(error === undefined ? undefined : toResourceError(error))
  }
}

/** Tells `listener` how `promise` settled (the paths that still run on promises); a throw goes to `onError`. */
export function settleWith(
  promise: Promise<unknown>,
  listener: PublishListener,
  onError: (error: unknown) => void,
): void {
  promise.then(
    () => tell(listener, undefined, onError),
    (error: unknown) => tell(listener, error, onError),
  )
}

/** A publish refused before anything was queued: told after the caller's turn, like a rejection. */
export function tellLater(
  listener: PublishListener,
  error: unknown,
  onError: (error: unknown) => void,
): void {
  queueMicrotask(() => tell(listener, error, onError))
}

function tell(listener: PublishListener, error: unknown, onError: (error: unknown) => void): void {
  try {
    listener.publishSettled(error)
  } catch (thrown) {
    onError(thrown)
  }
}
