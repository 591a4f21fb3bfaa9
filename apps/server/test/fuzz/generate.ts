/**
 * Valid packets of every type, for MQTT 3.1.1 and 5, with random field values, encoded by
 * mqtt-packet's `generate` (the encoder is a well-kept library; only the values are ours).
 */
import mqttPacket from 'mqtt-packet'
import type { Rng } from './prng.js'

export type Version = 4 | 5

export const PACKET_TYPES = [
  'connect',
  'connack',
  'publish',
  'puback',
  'pubrec',
  'pubrel',
  'pubcomp',
  'subscribe',
  'suback',
  'unsubscribe',
  'unsuback',
  'pingreq',
  'pingresp',
  'disconnect',
  'auth',
] as const
export type PacketType = (typeof PACKET_TYPES)[number]

export interface Generated {
  version: Version
  cmd: PacketType
  bytes: Buffer
  /** v5: where the properties' length starts, counted from the start of the body (after the fixed header). */
  propertiesAt?: number
}

/**
 * Topics the fuzzing role may write (plain `fz/…`, table `Fuzz`), may not (plain `keep/…`, table `Guard`),
 * or are odd. (A table also claims its name's first segment in any case: `fuzz/a` is record `a` of `Fuzz`.)
 */
const TOPICS = [
  'fz/a',
  'fz/b/c',
  'fz/é/ü',
  'Fuzz/1',
  'Fuzz/2',
  'keep/a',
  'Guard/1',
  'control/ping',
  '$SYS/broker',
  'a',
  '/',
  'fz//x',
]
const FILTERS = [
  '#',
  '+',
  '+/+',
  'fz/#',
  'fz/+/c',
  'Fuzz/#',
  'Guard/#',
  'keep/+',
  '$share/g/fz/#',
  '$share/g/#',
  '$SYS/#',
  'fz/a',
  'control/#',
]
const CLIENT_IDS = ['fz-0', 'fz-1', 'fz-2', 'fz-3', '']
const USERS = ['fuzzer', 'admin', 'nobody', '']

function ascii(rng: Rng, min: number, max: number): string {
  const n = rng.int(min, max)
  let s = ''
  for (let i = 0; i < n; i++) s += String.fromCharCode(rng.int(0x21, 0x7e))
  return s
}

function topic(rng: Rng): string {
  if (rng.chance(0.15)) return `fz/${ascii(rng, 0, 12).replace(/[#+]/g, '_')}`
  if (rng.chance(0.02)) return `fz/${'x'.repeat(rng.int(100, 2000))}`
  return rng.pick(TOPICS)
}

function filter(rng: Rng): string {
  return rng.chance(0.8) ? rng.pick(FILTERS) : topic(rng)
}

function payload(rng: Rng, t: string): Buffer {
  if (t.startsWith('Fuzz/') && rng.chance(0.7)) {
    return Buffer.from(JSON.stringify({ n: rng.int(-1000, 1000), s: ascii(rng, 0, 8) }))
  }
  const r = rng.u32() % 100
  if (r < 15) return Buffer.alloc(0)
  if (r < 97) return rng.bytes(rng.int(1, 64))
  return rng.bytes(rng.int(1000, 70_000))
}

const u16 = (rng: Rng) => rng.pick([0, 1, 2, rng.int(0, 0xffff), 0xffff])
const u32 = (rng: Rng) => rng.pick([0, 1, 10, rng.int(0, 3600), 0xffffffff])
const qos = (rng: Rng) => rng.int(0, 2) as 0 | 1 | 2
const messageId = (rng: Rng) => rng.pick([1, 2, rng.int(1, 0xffff)])

function userProperties(rng: Rng): Record<string, string | string[]> | undefined {
  if (!rng.chance(0.3)) return undefined
  const out: Record<string, string | string[]> = {}
  // at least one: mqtt-packet writes nothing at all for an empty set
  const n = rng.int(1, 3)
  for (let i = 0; i < n; i++) {
    const key = ascii(rng, 0, 6)
    out[key] = rng.chance(0.2) ? [ascii(rng, 0, 6), ascii(rng, 0, 6)] : ascii(rng, 0, 10)
  }
  return out
}

/** Drops undefined members (mqtt-packet writes a property for every key present). */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T
}

function reasonProps(rng: Rng) {
  return defined({
    reasonString: rng.chance(0.3) ? ascii(rng, 0, 20) : undefined,
    userProperties: userProperties(rng),
  })
}

/** A CONNECT in one of its shapes: clean or not, with or without will, credentials and v5 properties. */
export function connectPacket(rng: Rng, version: Version): mqttPacket.IConnectPacket {
  const t = topic(rng)
  const will = rng.chance(0.3)
    ? {
        topic: t,
        payload: payload(rng, t),
        qos: qos(rng),
        retain: rng.chance(0.3),
        ...(version === 5 && rng.chance(0.5)
          ? {
              properties: defined({
                willDelayInterval: rng.chance(0.5) ? rng.int(0, 2) : undefined,
                payloadFormatIndicator: rng.chance(0.2) ? rng.chance(0.5) : undefined,
                messageExpiryInterval: rng.chance(0.2) ? u32(rng) : undefined,
                contentType: rng.chance(0.2) ? ascii(rng, 0, 12) : undefined,
                responseTopic: rng.chance(0.2) ? topic(rng) : undefined,
                correlationData: rng.chance(0.2) ? rng.bytes(rng.int(0, 16)) : undefined,
                userProperties: userProperties(rng),
              }),
            }
          : {}),
      }
    : undefined
  // credentials are rare and mostly right: a wrong password costs the server a full scrypt hash
  const username = rng.chance(0.15) ? rng.pick(USERS) : undefined
  const auth = rng.chance(0.1)
  const clientId = rng.chance(0.9) ? rng.pick(CLIENT_IDS) : ascii(rng, 1, 30)
  return defined({
    cmd: 'connect' as const,
    protocolId: 'MQTT' as const,
    protocolVersion: version,
    // an empty client id with a kept session is refused by mqtt-packet's encoder (a mutation still makes it)
    clean: clientId === '' || rng.chance(0.8),
    clientId,
    keepalive: rng.pick([0, 0, 1, 60, 0xffff]),
    username,
    password:
      username !== undefined && rng.chance(0.7)
        ? Buffer.from(rng.pick(['fuzzer-pw', 'fuzzer-pw', 'fuzzer-pw', 'wrong', '']))
        : undefined,
    will,
    properties:
      version === 5 && rng.chance(0.6)
        ? defined({
            // session expiry stays short: sessions the fuzzer leaves behind must not pile up
            sessionExpiryInterval: rng.chance(0.5) ? rng.int(0, 5) : undefined,
            receiveMaximum: rng.chance(0.3) ? rng.int(1, 0xffff) : undefined,
            maximumPacketSize: rng.chance(0.2) ? rng.pick([1, 20, 128, 0xffff]) : undefined,
            topicAliasMaximum: rng.chance(0.3) ? u16(rng) : undefined,
            requestResponseInformation: rng.chance(0.2) ? rng.chance(0.5) : undefined,
            requestProblemInformation: rng.chance(0.2) ? rng.chance(0.5) : undefined,
            userProperties: userProperties(rng),
            authenticationMethod: auth ? rng.pick(['SCRAM-SHA-256', 'PLAIN', '']) : undefined,
            authenticationData: auth && rng.chance(0.5) ? rng.bytes(rng.int(0, 40)) : undefined,
          })
        : undefined,
  }) as mqttPacket.IConnectPacket
}

function packetOf(rng: Rng, cmd: PacketType, version: Version): mqttPacket.Packet {
  const v5 = version === 5
  switch (cmd) {
    case 'connect':
      return connectPacket(rng, version)
    case 'connack':
      return defined({
        cmd,
        sessionPresent: rng.chance(0.5),
        returnCode: v5 ? undefined : rng.int(0, 5),
        reasonCode: v5 ? rng.pick([0, 0x80, 0x87]) : undefined,
        properties: v5 ? reasonProps(rng) : undefined,
      }) as mqttPacket.Packet
    case 'publish': {
      const t = topic(rng)
      const q = qos(rng)
      return defined({
        cmd,
        topic: rng.chance(0.05) && v5 ? '' : t,
        payload: payload(rng, t),
        qos: q,
        retain: rng.chance(0.4),
        dup: rng.chance(0.1),
        messageId: q > 0 ? messageId(rng) : undefined,
        properties: v5
          ? defined({
              payloadFormatIndicator: rng.chance(0.2) ? rng.chance(0.5) : undefined,
              messageExpiryInterval: rng.chance(0.2) ? u32(rng) : undefined,
              topicAlias: rng.chance(0.2) ? rng.pick([1, 2, u16(rng)]) : undefined,
              responseTopic: rng.chance(0.1) ? topic(rng) : undefined,
              correlationData: rng.chance(0.1) ? rng.bytes(rng.int(0, 16)) : undefined,
              userProperties: userProperties(rng),
              subscriptionIdentifier: rng.chance(0.05) ? rng.int(1, 268_435_455) : undefined,
              contentType: rng.chance(0.2) ? ascii(rng, 0, 20) : undefined,
            })
          : undefined,
      }) as mqttPacket.Packet
    }
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      return defined({
        cmd,
        messageId: messageId(rng),
        reasonCode: v5
          ? rng.pick(cmd === 'puback' || cmd === 'pubrec' ? [0, 0x10, 0x80, 0x87] : [0, 0x92])
          : undefined,
        properties: v5 ? reasonProps(rng) : undefined,
      }) as mqttPacket.Packet
    case 'subscribe': {
      const n = rng.int(1, 4)
      const subscriptions = Array.from({ length: n }, () =>
        defined({
          topic: filter(rng),
          qos: qos(rng),
          nl: v5 ? rng.chance(0.3) : undefined,
          rap: v5 ? rng.chance(0.3) : undefined,
          rh: v5 ? rng.int(0, 2) : undefined,
        }),
      )
      return defined({
        cmd,
        messageId: messageId(rng),
        subscriptions,
        properties: v5
          ? defined({
              subscriptionIdentifier: rng.chance(0.3) ? rng.int(1, 268_435_455) : undefined,
              userProperties: userProperties(rng),
            })
          : undefined,
      }) as mqttPacket.Packet
    }
    case 'suback':
      return defined({
        cmd,
        messageId: messageId(rng),
        granted: Array.from({ length: rng.int(1, 3) }, () => rng.pick([0, 1, 2, 0x80])),
        properties: v5 ? reasonProps(rng) : undefined,
      }) as mqttPacket.Packet
    case 'unsubscribe':
      return defined({
        cmd,
        messageId: messageId(rng),
        unsubscriptions: Array.from({ length: rng.int(1, 3) }, () => filter(rng)),
        properties: v5 ? defined({ userProperties: userProperties(rng) }) : undefined,
      }) as mqttPacket.Packet
    case 'unsuback':
      return defined({
        cmd,
        messageId: messageId(rng),
        granted: v5 ? [rng.pick([0, 0x11, 0x80])] : undefined,
        properties: v5 ? reasonProps(rng) : undefined,
      }) as mqttPacket.Packet
    case 'pingreq':
    case 'pingresp':
      return { cmd } as mqttPacket.Packet
    case 'disconnect':
      return defined({
        cmd,
        reasonCode: v5 ? rng.pick([0, 4, 0x80, 0x8e]) : undefined,
        properties: v5
          ? defined({
              sessionExpiryInterval: rng.chance(0.2) ? rng.int(0, 5) : undefined,
              ...reasonProps(rng),
              serverReference: rng.chance(0.1) ? ascii(rng, 0, 10) : undefined,
            })
          : undefined,
      }) as mqttPacket.Packet
    case 'auth':
      return {
        cmd,
        reasonCode: rng.pick([0, 0x18, 0x19]),
        properties: defined({
          authenticationMethod: rng.chance(0.7) ? rng.pick(['SCRAM-SHA-256', 'PLAIN']) : undefined,
          authenticationData: rng.chance(0.6) ? rng.bytes(rng.int(0, 60)) : undefined,
          ...reasonProps(rng),
        }),
      } as mqttPacket.Packet
  }
}

/** Where v5 properties start in the body of `packet` as `generate` lays it out. */
function propertiesAt(packet: mqttPacket.Packet): number | undefined {
  switch (packet.cmd) {
    case 'connect':
      return 10 // protocol name (2 + 4), level, flags, keep-alive
    case 'connack':
    case 'subscribe':
    case 'suback':
    case 'unsubscribe':
    case 'unsuback':
      return 2
    case 'publish':
      return 2 + Buffer.byteLength(packet.topic) + (packet.qos > 0 ? 2 : 0)
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      return 3
    case 'disconnect':
    case 'auth':
      return 1
    default:
      return undefined
  }
}

/** A valid packet of type `cmd` (random type when omitted) for `version`. */
export function generatePacket(rng: Rng, version: Version, cmd?: PacketType): Generated {
  // 3.1.1 has no AUTH: its slot goes to PUBLISH, the packet with the most to get wrong
  let type = cmd ?? pickType(rng)
  if (type === 'auth' && version === 4) type = 'publish'
  let packet = packetOf(rng, type, version)
  let bytes: Buffer
  try {
    bytes = mqttPacket.generate(packet, { protocolVersion: version })
    // some refusals write nothing instead of throwing
    if (bytes.length === 0) throw new Error('mqtt-packet refused the values')
  } catch {
    // values the encoder refuses (it checks some MQTT rules): a plain PUBLISH instead, still deterministic
    packet = packetOf(rng, 'publish', version)
    type = 'publish'
    bytes = mqttPacket.generate(packet, { protocolVersion: version })
  }
  const at = version === 5 ? propertiesAt(packet) : undefined
  return { version, cmd: type, bytes, ...(at !== undefined ? { propertiesAt: at } : {}) }
}

/** PUBLISH and SUBSCRIBE reach the most code; every other type still comes up often. */
function pickType(rng: Rng): PacketType {
  const r = rng.u32() % 100
  if (r < 30) return 'publish'
  if (r < 42) return 'subscribe'
  if (r < 48) return 'unsubscribe'
  if (r < 54) return 'connect'
  return PACKET_TYPES[rng.int(0, PACKET_TYPES.length - 1)] as PacketType
}
