/**
 * The per-connection fault barrier. Whatever a handler of one connection throws or rejects with
 * (frame handling, continuations after a commit, encoders, auth plug-ins, resource code reached
 * through the runtime) is handed to that connection's `fault()`, which closes it and nothing else:
 * no exception raised for one client may reach the process.
 */
import { MqttError, ReasonCode } from './errors.js'

/** Receives the faults of one connection. `fault` never throws. */
export interface FaultSink {
  fault(err: unknown): void
}

/** Wraps a callback (stream event, timer, continuation) so that what it throws goes to `sink`. */
export function guarded<A extends unknown[]>(
  sink: FaultSink,
  fn: (...args: A) => void,
): (...args: A) => void {
  return (...args: A) => {
    try {
      fn(...args)
    } catch (err) {
      sink.fault(err)
    }
  }
}

/**
 * `promise.then(onFulfilled, onRejected)` with both callbacks guarded; a rejection without its own
 * handler is a fault too. The returned chain never rejects, so nothing is left unhandled.
 */
export function settle<T>(
  sink: FaultSink,
  promise: PromiseLike<T>,
  onFulfilled: (value: T) => void,
  onRejected: (err: unknown) => void = (err) => sink.fault(err),
): void {
  promise.then(guarded(sink, onFulfilled), guarded(sink, onRejected))
}

/** How a fault closes its connection: the reason code to send, and whether it is our own failure. */
export interface FaultReason {
  reasonCode: number
  /** True for anything but a protocol error the client caused (logged at error, not warn). */
  internal: boolean
}

/** A protocol error thrown by a handler keeps its reason code; anything else is 0x83 (implementation specific). */
export function faultReason(err: unknown): FaultReason {
  if (err instanceof MqttError) return { reasonCode: err.reasonCode, internal: false }
  return { reasonCode: ReasonCode.ImplementationSpecificError, internal: true }
}
