import type { ClusterLog } from './options.js'

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/**
 * Errors that no retry mends (bad configuration, permissions); anything else from a JetStream API call
 * (a timeout, no responders, "JetStream temporarily unavailable", no suitable peers yet) is taken for a
 * cluster still electing its leaders.
 */
function isPermanent(error: unknown): boolean {
  const message = String((error as Error)?.message ?? error)
  return /permission|authoriz|already in use|invalid|bad request|not enabled for account/i.test(message)
}

/**
 * `work()` retried with back-off (100 ms doubling to 1 s) while it fails transiently and `deadline`
 * (epoch ms) has not passed; then its last error. `stopped()` ends it early (the node closes).
 * Right after NATS starts, or while JetStream elects a meta leader, API requests time out or answer
 * "temporarily unavailable" for seconds: this keeps a node from failing its start on that.
 */
export async function retryTransient<T>(
  what: string,
  work: () => Promise<T>,
  options: { deadline: number; log: ClusterLog; stopped?: () => boolean },
): Promise<T> {
  let wait = 100
  for (let attempt = 1; ; attempt++) {
    try {
      return await work()
    } catch (error) {
      if (isPermanent(error) || options.stopped?.() || Date.now() + wait >= options.deadline) throw error
      options.log.warn({ err: error, attempt }, `cluster: ${what} failed; retrying`)
      await sleep(wait)
      wait = Math.min(wait * 2, 1000)
    }
  }
}
