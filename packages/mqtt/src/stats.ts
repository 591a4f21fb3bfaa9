/**
 * The broker's counters, as plain numbers: connections and sessions increment fields of objects they
 * hold a reference to (one addition per message, no lookup, no metrics library), and a monitoring
 * layer (the server's Prometheus registry, `$SYS` topics) reads them when it is asked.
 */
import type { ConnectionInfo } from './connection-info.js'

export type Door = ConnectionInfo['transport']

/** Counters of one door (transport): every connection through it adds to the same object. */
export interface DoorStats {
  /** Successful CONNECTs (CONNACK 0 sent). */
  connects: number
  /** PUBLISH packets received, by QoS (index 0, 1, 2). */
  messagesIn: [number, number, number]
  /** PUBLISH packets sent (first transmissions, not DUP resends), by QoS. */
  messagesOut: [number, number, number]
}

/** Why a message did not reach its subscriber or was not applied. */
export interface DroppedStats {
  /** The session's outbound queue was at `maxQueued`. */
  queueFull: number
  /** Its Message Expiry Interval passed before delivery started. */
  expired: number
  /** The runtime refused an inbound publish (permissions, validation). */
  refused: number
  /** A QoS 0 message to a subscriber that does not read fast enough. */
  slowReader: number
  /** Larger than the subscriber's Maximum Packet Size. */
  tooLarge: number
}

export const DOORS: readonly Door[] = ['tcp', 'tls', 'ws', 'wss']

function doorStats(): DoorStats {
  return { connects: 0, messagesIn: [0, 0, 0], messagesOut: [0, 0, 0] }
}

/**
 * Monotonic counters since the broker was created. Gauges (open connections, sessions, queue depths)
 * are not kept here: `broker.clients()` and `broker.sessions()` compute them when asked.
 */
export class BrokerStats {
  readonly doors: Record<Door, DoorStats> = {
    tcp: doorStats(),
    tls: doorStats(),
    ws: doorStats(),
    wss: doorStats(),
  }
  /** CONNECTs refused for bad credentials, an unknown certificate user, refused anonymous access or a failed AUTH exchange. */
  authFailures = 0
  readonly dropped: DroppedStats = { queueFull: 0, expired: 0, refused: 0, slowReader: 0, tooLarge: 0 }

  /** The counters of a door; an unknown transport name counts as `tcp`. */
  door(transport: string): DoorStats {
    return Object.hasOwn(this.doors, transport) ? this.doors[transport as Door] : this.doors.tcp
  }
}
