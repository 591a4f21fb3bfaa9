import type { KeySpec } from './config-key-spec.js'

/** The `mqtt.*` keys, in the order of the README's reference table. */
export const MQTT_KEYS: readonly KeySpec[] = [
  {
    key: 'mqtt.network.port',
    type: { kind: 'port' },
    nullable: true,
    default: 1883,
    description: 'MQTT over TCP port; null disables it; 0 picks a free port',
    aliases: ['mqtt-port'],
  },
  {
    key: 'mqtt.network.securePort',
    type: { kind: 'port' },
    nullable: true,
    default: 8883,
    description:
      'MQTT over TLS port; started only when tls.certificate and tls.privateKey are set (setting it explicitly without them is an error)',
    aliases: ['mqtts-port'],
  },
  {
    key: 'mqtt.network.host',
    type: { kind: 'string' },
    nullable: true,
    default: null,
    description: 'Interface the MQTT listeners bind to; null = all interfaces',
  },
  {
    key: 'mqtt.webSocket',
    type: { kind: 'boolean' },
    default: true,
    description:
      'Accept MQTT over WebSocket (sub-protocol `mqtt`) on the HTTP and HTTPS ports; an upgrade request with Accept: application/cbor (or msgpack) gets records in that format',
  },
  {
    key: 'mqtt.mTLS.enabled',
    type: { kind: 'boolean' },
    default: false,
    description:
      'Ask MQTT TLS clients (and MQTT over WSS) for a certificate signed by tls.certificateAuthority; `mqtt.mTLS: true` is shorthand',
  },
  {
    key: 'mqtt.mTLS.user',
    type: { kind: 'string' },
    nullable: true,
    default: 'CN',
    description: 'Certificate subject field that names the user (CN, emailAddress, UID, ...); null = never',
  },
  {
    key: 'mqtt.mTLS.required',
    type: { kind: 'boolean' },
    default: false,
    description: 'Refuse MQTT TLS clients without a valid certificate (TLS handshake fails)',
  },
  {
    key: 'mqtt.requireAuthentication',
    type: { kind: 'boolean' },
    default: false,
    description:
      'MQTT CONNECT must carry credentials or a certificate user even when anonymous.enabled is true',
  },
  {
    key: 'mqtt.maxKeepAlive',
    type: { kind: 'integer', min: 0, max: 65535 },
    default: 65535,
    description:
      'Longest keep-alive a client may use, seconds (MQTT 5: sent as Server Keep Alive; MQTT 3.1.1: a longer one is refused)',
  },
  {
    key: 'mqtt.maxPacketSize',
    type: { kind: 'size' },
    default: 10 * 1024 * 1024,
    description: 'Largest MQTT packet in bytes; larger packets close the connection (reason 0x95)',
  },
  {
    key: 'mqtt.receiveMaximum',
    type: { kind: 'integer', min: 1, max: 65535 },
    default: 100,
    description: 'Inbound QoS 1/2 publishes a client may have unacknowledged (MQTT 5 Receive Maximum)',
  },
  {
    key: 'mqtt.maxInflight',
    type: { kind: 'integer', min: 1, max: 65535 },
    default: 65535,
    // 65535 (MQTT's own bound): a smaller window makes a fast subscriber's messages wait in the broker for
    // its PUBACKs (S3 of the benchmark: 100 gave 3x the p50 latency and 0.67x the throughput)
    description:
      "Outbound QoS 1/2 messages in flight per session (also capped by the client's Receive Maximum); lower it to bound what a slow QoS 1/2 subscriber holds",
  },
  {
    key: 'mqtt.maxQueued',
    type: { kind: 'integer', min: 0 },
    default: 10000,
    description: 'Outbound QoS 1/2 messages queued per session behind a full in-flight window',
  },
  {
    key: 'mqtt.maxConnections',
    type: { kind: 'integer', min: 0 },
    default: 0,
    description:
      'MQTT connections served at once (TCP, TLS and WebSocket together); one more gets CONNACK 0x97 (3.1.1: 0x03) before its credentials are checked; 0 = unlimited',
  },
  {
    key: 'mqtt.connectTimeout',
    type: { kind: 'duration' },
    default: 10_000,
    description:
      'Time a new MQTT connection has to send CONNECT (and each AUTH step of enhanced authentication) before it is closed (ms, or 10s)',
  },
  {
    key: 'mqtt.maxConnectionsPerUser',
    type: { kind: 'integer', min: 0 },
    default: 0,
    description: 'Concurrent MQTT connections per user; 0 = unlimited',
  },
  {
    key: 'mqtt.rejectUnclaimedTopics',
    type: { kind: 'boolean' },
    default: false,
    description:
      'Refuse publishes/subscribes to topics no table claims instead of keeping them as plain topics',
  },
  {
    key: 'mqtt.refusedPublish',
    type: { kind: 'enum', values: ['acknowledge', 'disconnect'] },
    default: 'acknowledge',
    description:
      'What an MQTT 3.1.1 client gets when its publish is refused (not permitted, invalid for the table): acknowledge = the normal PUBACK/PUBREC, message dropped; disconnect = the connection is closed. MQTT 5 always gets the reason code; every refusal is logged at warn',
  },
]
