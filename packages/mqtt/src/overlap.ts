/**
 * Overlapping subscriptions of one session (MQTT 5 section 3.3.4, MQTT 3.1.1 section 3.3.5): a message that
 * matches several of a client's subscriptions is sent once, at the highest QoS of those subscriptions, with
 * every matching Subscription Identifier. Each subscription has its own runtime subscription (and its own
 * retained, replay and live phases), so the same event reaches the session once per subscription, at
 * different moments: the first copy is sent for all of them and the later ones are recognised and dropped.
 */
import { matchesFilter } from '@proj/topic-matcher'
import type { ResourceEvent } from './runtime.js'

/** What the guard needs of a subscription. */
export interface OverlapSubscription {
  readonly filter: string
  readonly qos: 0 | 1 | 2
  readonly nl: boolean
  readonly rap: boolean
  readonly shared: boolean
  readonly closed: boolean
  readonly id?: number
}

/** One copy for every subscription an event matches. */
export interface MergedDelivery {
  qos: 0 | 1 | 2
  /** Subscription identifiers of every matching subscription (undefined: none has one). */
  ids: number[] | undefined
  /** Retain As Published on any of them. */
  rap: boolean
  /** The other matching subscriptions' filters: their cursors move with this copy. */
  also: string[]
}

/** Events remembered as sent for several subscriptions; the oldest are forgotten past this. */
const REMEMBERED = 65_536

export class OverlapGuard {
  /** Logged events (cursor > 0) sent once for several subscriptions, oldest first. */
  private readonly cursors = new Set<number>()
  /** Unlogged events (QoS 0 messages, cursor 0): the same object reaches every subscription. */
  private readonly objects = new WeakSet<object>()

  /**
   * For an event delivered through `sub`: null when it was already sent through another subscription;
   * undefined when `sub` is the only subscription it matches (the common case, nothing remembered);
   * else the merged delivery, and the event is remembered so the other subscriptions' copies are dropped.
   */
  merge(
    subscriptions: Iterable<OverlapSubscription>,
    sub: OverlapSubscription,
    event: ResourceEvent,
    clientId: string,
  ): MergedDelivery | null | undefined {
    // Current values sent on subscribe belong to that subscription (each SUBSCRIBE gets its retained messages).
    if (event.retained) return undefined
    const cursor = event.cursor
    if (cursor !== 0 ? this.cursors.has(cursor) : this.objects.has(event)) return null
    const own = event.meta?.clientId === clientId
    let merged: MergedDelivery | undefined
    for (const other of subscriptions) {
      if (other === sub || other.shared || other.closed || (other.nl && own)) continue
      if (!matchesFilter(other.filter, event.topic)) continue
      merged ??= {
        qos: sub.qos,
        ids: sub.id === undefined ? undefined : [sub.id],
        rap: sub.rap,
        also: [],
      }
      if (other.qos > merged.qos) merged.qos = other.qos
      if (other.id !== undefined && !merged.ids?.includes(other.id)) (merged.ids ??= []).push(other.id)
      merged.rap ||= other.rap
      merged.also.push(other.filter)
    }
    if (merged === undefined) return undefined
    if (cursor !== 0) {
      this.cursors.add(cursor)
      if (this.cursors.size > REMEMBERED) {
        for (const oldest of this.cursors) {
          this.cursors.delete(oldest)
          break
        }
      }
    } else {
      this.objects.add(event)
    }
    return merged
  }
}
