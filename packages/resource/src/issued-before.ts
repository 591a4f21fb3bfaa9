/**
 * A subscription resumed after a cursor another node issued (`ack: local`): that node delivered its own
 * events up to the cursor before the stream had them. The log read leaves out those this node had
 * applied; this leaves out those that reach it after the read, live.
 */
export class IssuedBefore {
  constructor(
    private readonly issuer: number,
    private readonly upTo: number,
    /** The store's `log.originOf`. */
    private readonly originOf: (cursor: number) => { node: number; cursor: number } | undefined,
  ) {}

  /**
   * Whether the issuer had delivered the event at `cursor`. `passed` turns true with the first of its
   * events it had not: its transactions reach the stream in commit order, so none it had comes later.
   */
  delivered(cursor: number): boolean {
    const origin = this.originOf(cursor)
    if (origin === undefined || origin.node !== this.issuer) return false
    if (origin.cursor <= this.upTo) return true
    this.passed = true
    return false
  }

  passed = false
}
