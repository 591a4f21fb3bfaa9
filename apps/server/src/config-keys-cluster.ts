import type { KeySpec } from './config-key-spec.js'

/** The `cluster.*` keys (NATS JetStream; on when cluster.nats.servers is set), in the README's order. */
export const CLUSTER_KEYS: readonly KeySpec[] = [
  {
    key: 'cluster.nats.servers',
    type: { kind: 'string' },
    nullable: true,
    default: null,
    description:
      'NATS URLs, comma-separated (nats://host:4222); setting it makes this server a cluster node (see @proj/cluster)',
  },
  {
    key: 'cluster.nodeName',
    type: { kind: 'string' },
    nullable: true,
    default: null,
    description:
      'This node’s name, unique in the cluster (its hash breaks last-writer-wins ties); null = host name',
  },
  {
    key: 'cluster.replicas',
    type: { kind: 'integer', min: 1, max: 5 },
    default: 3,
    description:
      'Replicas of the JetStream stream (3 for a three-server NATS cluster; 1 for a single NATS server)',
  },
  {
    key: 'cluster.ack',
    type: { kind: 'enum', values: ['replicated', 'local'] },
    default: 'replicated',
    description:
      'When a write is acknowledged: replicated = in the stream on a quorum and applied here; local = once committed on this node (replicated afterwards from a durable outbox)',
  },
  {
    key: 'cluster.prefix',
    type: { kind: 'string' },
    default: 'proj',
    description:
      'Stream name and subject prefix (several clusters can share one NATS); [A-Za-z0-9_-], 1-32 characters',
  },
  {
    key: 'cluster.writeTimeout',
    type: { kind: 'duration' },
    default: 10_000,
    description:
      'How long a write retries while JetStream has no quorum before it fails (HTTP 503, MQTT 0x80; never acknowledged)',
  },
  {
    key: 'cluster.applyTimeout',
    type: { kind: 'duration' },
    default: 30_000,
    description:
      'How long a write that JetStream acknowledged waits for this node to apply it before it fails (HTTP 503, MQTT 0x80; outcome unknown, it may still apply)',
  },
  {
    key: 'cluster.outboxLimit',
    type: { kind: 'integer', min: 0 },
    default: 100_000,
    description:
      'cluster.ack local: most writes this node keeps unsent while NATS or a JetStream quorum is unreachable; more are refused (HTTP 503 with Retry-After, MQTT 0x80); 0 = no bound',
  },
  {
    key: 'cluster.catchUpTimeout',
    type: { kind: 'duration' },
    default: 30_000,
    description:
      'How long a request or MQTT connection waits while this node catches up before it is refused (HTTP 503 with Retry-After; MQTT connection closed)',
  },
  {
    key: 'cluster.nats.user',
    type: { kind: 'string' },
    nullable: true,
    default: null,
    description: 'NATS user name (with cluster.nats.password)',
  },
  {
    key: 'cluster.nats.password',
    type: { kind: 'string' },
    nullable: true,
    default: null,
    description: 'NATS password',
  },
  {
    key: 'cluster.nats.token',
    type: { kind: 'string' },
    nullable: true,
    default: null,
    description: 'NATS authentication token',
  },
  {
    key: 'cluster.nats.credentials',
    type: { kind: 'path' },
    nullable: true,
    default: null,
    description: 'NATS .creds file (JWT and nkey seed), relative to the root',
  },
  {
    key: 'cluster.nats.tls.ca',
    type: { kind: 'path' },
    nullable: true,
    default: null,
    description: 'PEM CA certificate to trust for TLS to NATS, relative to the root',
  },
  {
    key: 'cluster.nats.tls.certificate',
    type: { kind: 'path' },
    nullable: true,
    default: null,
    description: 'PEM client certificate for mutual TLS to NATS (with cluster.nats.tls.privateKey)',
  },
  {
    key: 'cluster.nats.tls.privateKey',
    type: { kind: 'path' },
    nullable: true,
    default: null,
    description: 'PEM private key of cluster.nats.tls.certificate',
  },
]
