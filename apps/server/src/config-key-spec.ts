/** What one configuration key is: its path, type, default and meaning (see config-schema.ts). */
export type KeyType =
  | { kind: 'port' }
  | { kind: 'integer'; min?: number; max?: number }
  | { kind: 'boolean' }
  | { kind: 'string' }
  | { kind: 'path' }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'size' }
  | { kind: 'duration' }
  | { kind: 'object' }
  /** `true` (= `*`), `false`, `*`, or a list of origins (comma-separated in env and flags). */
  | { kind: 'origins' }
  /** A list of IP addresses and subnets (`127.0.0.0/8`, `::1`), comma-separated in env and flags. */
  | { kind: 'addresses' }

export interface KeySpec {
  /** Dotted key path, e.g. `mqtt.network.port`. */
  key: string
  type: KeyType
  /** `null` is allowed (means "off" / "all interfaces" / "not set", as the description says). */
  nullable?: boolean
  default: unknown
  description: string
  /** Extra short CLI flags, without the leading `--`. */
  aliases?: readonly string[]
}
