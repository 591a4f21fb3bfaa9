import type { Table } from './table.js'

/**
 * Removes the expired records of a table with `@table(expiration)` in the background, every half
 * expiration (between 1 s and 1 min); the caller clears the returned timer on close.
 */
export function sweepExpired(
  resource: Table,
  closed: () => boolean,
  onError: (error: unknown) => void,
): NodeJS.Timeout {
  const expiration = resource.definition.expiration ?? 0
  const interval = Math.min(60_000, Math.max(1000, (expiration * 1000) / 2))
  const timer = setInterval(() => {
    if (closed()) return
    resource.removeExpired().catch((error) => {
      if (!closed()) onError(error)
    })
  }, interval)
  timer.unref()
  return timer
}
