/** Where a connection came from, as its transport tells the broker (`broker.handle(stream, info)`). */
export interface ConnectionInfo {
  transport: 'tcp' | 'tls' | 'ws' | 'wss'
  remoteAddress?: string
  remotePort?: number
  /** mTLS: the user named by the client certificate; authenticates without a password via runtime.findUser. */
  certificateUser?: string
  /**
   * An HTTP Accept value the transport carried (MQTT over WebSocket: the upgrade request's). When it
   * prefers CBOR or MessagePack, records go to this connection in that format unless CONNECT's user
   * property `accept` or a subscription's says otherwise.
   */
  accept?: string
}
