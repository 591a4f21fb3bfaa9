import { StorageError } from '@proj/storage'

/**
 * A write the cluster could not put in the stream in time (no JetStream quorum, NATS unreachable):
 * never acknowledged. Storage code `STORAGE_UNAVAILABLE`, so the runtime answers `UNAVAILABLE`
 * (HTTP 503 with `Retry-After`, MQTT 0x80 on PUBACK/PUBREC). Also a local commit refused because the
 * `ack: local` outbox is full.
 */
export class ClusterUnavailableError extends StorageError {
  override name = 'ClusterUnavailableError'
  /** When to try again (HTTP `Retry-After`). */
  readonly retryAfterMs: number
  constructor(message: string, options?: ErrorOptions & { retryAfterMs?: number }) {
    super('STORAGE_UNAVAILABLE', message, options)
    this.retryAfterMs = options?.retryAfterMs ?? 1000
  }
}
