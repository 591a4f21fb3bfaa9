/**
 * The events a query subscriber gets besides the change itself, each made once per change and shared by
 * every subscriber that needs it: the whole record as a put when it enters a result, a `leave` (or
 * `delete`) when it leaves, and the value projected by a `select()`.
 */
import { RuntimeEvent } from './event.js'
import type { EventMeta } from './types.js'

/** Events derived from one change for query subscribers (a put for an enter, a leave, a projection). */
export interface Derived {
  change: RuntimeEvent | undefined
  enter: RuntimeEvent | undefined
  leave: RuntimeEvent | undefined
}

const derivedSlot = Symbol('derived')
const projectedSlot = Symbol('projected')
type Slotted = RuntimeEvent & { [derivedSlot]?: Derived; [projectedSlot]?: Map<string, RuntimeEvent> }

/** The derived events of `event`, kept on the event so a replay and the live feed share them. */
export function derivedOf(event: RuntimeEvent): Derived {
  const slotted = event as Slotted
  let derived = slotted[derivedSlot]
  if (derived === undefined) {
    derived = { change: event, enter: undefined, leave: undefined }
    slotted[derivedSlot] = derived
  }
  return derived
}

/** A record that starts matching: a put of the whole record, whatever the write was. */
export function enterEvent(event: RuntimeEvent, derived: Derived): RuntimeEvent {
  derived.enter ??= newEnterEvent(event)
  return derived.enter
}

/** A record that stops matching: `leave`, or `delete` when it was deleted (MQTT 5: user property `event`). */
export function leaveEvent(event: RuntimeEvent, derived: Derived, deleted: boolean): RuntimeEvent {
  derived.leave ??= newLeaveEvent(event, deleted)
  return derived.leave
}

/**
 * The put of a record that starts matching, made anew (the live feed makes it once per change and
 * keeps it for the change's other subscribers, with no slot on the event).
 */
export function newEnterEvent(event: RuntimeEvent): RuntimeEvent {
  const put = copyEvent(event, 'put', false, event.meta)
  put.value = event.value
  return put
}

/** The leave (or delete) of a record that stops matching, made anew (see newEnterEvent). */
export function newLeaveEvent(event: RuntimeEvent, deleted: boolean): RuntimeEvent {
  const type = deleted || event.type === 'delete' ? 'delete' : 'leave'
  return copyEvent(event, type, false, withEventProperty(event.meta, type))
}

/** The event with its value projected by a `select()`, shared by equal selections (`selectKey`). */
export function projected(
  event: RuntimeEvent,
  selectKey: string,
  project: (value: unknown) => unknown,
): RuntimeEvent {
  // Records are projected; a message is not a record and is delivered as published.
  if (event.type !== 'put' && event.type !== 'patch') return event
  const slotted = event as Slotted
  let map = slotted[projectedSlot]
  const hit = map?.get(selectKey)
  if (hit !== undefined) return hit
  const copy = copyEvent(event, event.type, event.retained, event.meta)
  copy.value = project(event.value)
  copy.resumeCursor = event.resumeCursor
  if (map === undefined) slotted[projectedSlot] = map = new Map()
  map.set(selectKey, copy)
  return copy
}

function copyEvent(
  event: RuntimeEvent,
  type: RuntimeEvent['type'],
  retained: boolean,
  meta: EventMeta | undefined,
): RuntimeEvent {
  const copy = new RuntimeEvent(
    type,
    event.topic,
    event.path,
    event.id,
    event.timestamp,
    event.cursor,
    event.user,
    retained,
    meta,
  )
  copy.origin = event.origin
  return copy
}

/** The meta of a derived event whose change had none: constants, shared (events are read-only). */
const bareMeta = (value: string): EventMeta =>
  Object.freeze({
    properties: Object.freeze({ userProperties: Object.freeze({ event: value }) }),
  }) as EventMeta
const BARE_LEAVE = bareMeta('leave')
const BARE_DELETE = bareMeta('delete')

/** MQTT 5 user property `event` on the copy (leave, delete, reset), beside the publisher's own. */
export function withEventProperty(meta: EventMeta | undefined, value: string): EventMeta {
  if (meta === undefined && value === 'leave') return BARE_LEAVE
  if (meta === undefined && value === 'delete') return BARE_DELETE
  const properties = (meta?.properties ?? {}) as Record<string, unknown>
  const user = (properties.userProperties ?? {}) as Record<string, unknown>
  return { ...meta, properties: { ...properties, userProperties: { ...user, event: value } } }
}
