/** One invalid configuration key: which key, where the value came from, and why it is wrong. */
export interface ConfigIssue {
  key: string
  /** `default`, the config file path, the environment variable name or the CLI flag. */
  source: string
  reason: string
}

/** The configuration cannot be used; `issues` lists every bad key. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  readonly code = 'CONFIG_INVALID'
  readonly issues: readonly ConfigIssue[]

  constructor(issues: readonly ConfigIssue[], options?: ErrorOptions) {
    super(
      `invalid configuration:\n${issues.map((i) => `  ${i.key}: ${i.reason}${i.source === 'default' ? '' : ` (from ${i.source})`}`).join('\n')}`,
      options,
    )
    this.issues = issues
  }
}

/** A listener could not start (port in use, permission denied, bad TLS material). */
export class ListenError extends Error {
  override readonly name = 'ListenError'
  readonly code = 'SERVER_LISTEN_FAILED'
}
