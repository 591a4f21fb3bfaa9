import { StorageError } from '@proj/storage'

/**
 * A write the cluster could not put in the stream in time (no JetStream quorum, NATS unreachable):
 * never acknowledged. Storage code `STORAGE_UNAVAILABLE`, so the runtime answers `UNAVAILABLE`
 * (HTTP 503, MQTT 0x80 on PUBACK/PUBREC).
 */
export class ClusterUnavailableError extends StorageError {
  override name = 'ClusterUnavailableError'
  constructor(message: string, options?: ErrorOptions) {
    super('STORAGE_UNAVAILABLE', message, options)
  }
}
