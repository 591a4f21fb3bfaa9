import type { RuntimeEvent } from './event.js'
import type { SubscriptionImpl } from './subscriptions.js'

/**
 * Streams a new subscription's initial events (current values, then the replay) to it with the
 * subscriber's back-pressure: after each event `pace` may return a promise (it is asked after every one:
 * a retained message may be megabytes), and the delivery goes on once it settles, so a large retained set is never built up in memory ahead of a socket (100,000 retained
 * messages were 8 MB queued for one subscriber at once, and QoS 0 ones past a reader's limit dropped).
 * The events come from a generator that holds its storage snapshot while paused; it is closed when the
 * subscription or the runtime closes. Resolves (or returns undefined, when it never paused) once every
 * event was handed over or delivery stopped; a failure goes to `onError`.
 */
export function deliverInitial(
  subscription: SubscriptionImpl,
  events: Iterator<RuntimeEvent>,
  pace: (() => Promise<void> | undefined) | undefined,
  stopped: () => boolean,
  onError: (error: unknown) => void,
): Promise<void> | undefined {
  try {
    for (;;) {
      if (subscription.closed || stopped()) {
        events.return?.()
        return undefined
      }
      const next = events.next()
      if (next.done === true) return undefined
      subscription.deliver(next.value)
      const paused = pace === undefined ? undefined : pace()
      if (paused !== undefined) {
        return paused.then(
          () => deliverInitial(subscription, events, pace, stopped, onError),
          (error: unknown) => stop(events, error, onError),
        )
      }
    }
  } catch (error) {
    stop(events, error, onError)
    return undefined
  }
}

function stop(events: Iterator<RuntimeEvent>, error: unknown, onError: (error: unknown) => void): void {
  onError(error)
  try {
    events.return?.()
  } catch (closeError) {
    onError(closeError)
  }
}
