import { MEDIA_TYPES, negotiate } from '@proj/codec'

/** Formats records can be sent in, JSON first: a wildcard or an absent preference means JSON. */
const RECORD_FORMATS = [MEDIA_TYPES.json, MEDIA_TYPES.cbor, MEDIA_TYPES.msgpack]

/**
 * The record format an HTTP Accept value asks for (MQTT over WebSocket carries the upgrade request's),
 * or undefined when it leaves the default (JSON): absent, a wildcard, JSON, or nothing we encode.
 */
export function formatForAccept(accept: string | undefined): string | undefined {
  if (accept === undefined) return undefined
  const chosen = negotiate(accept, RECORD_FORMATS)
  return chosen === undefined || chosen === MEDIA_TYPES.json ? undefined : chosen
}
