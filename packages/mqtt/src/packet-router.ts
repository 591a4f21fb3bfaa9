/**
 * The frames of a connected client (after CONNACK): PUBLISH to the inbound publish flows, acknowledgements of
 * outbound messages to the session, SUBSCRIBE/UNSUBSCRIBE to the subscribe flows, PINGREQ, DISCONNECT (the
 * session expiry it sets, the will), AUTH (re-authentication). A packet only a server sends is a protocol
 * violation.
 */
import type { ConnectionHost } from './connection-host.js'
import type { EnhancedAuth } from './enhanced-auth.js'
import { ProtocolError, ReasonCode } from './errors.js'
import { settle } from './fault.js'
import { InboundFlows, type InboundPeer } from './inbound-publish.js'
import { onPubrec, type PubrecPeer } from './outbound-acks.js'
import { type DisconnectPacket, type Packet, PINGRESP } from './packets.js'
import type { Session } from './session.js'
import { SubscribeFlows, type SubscribePeer } from './subscribe-flows.js'

/** What the router needs of its connection. */
export interface RouterPeer extends InboundPeer, SubscribePeer, PubrecPeer {
  readonly session: Session | null
  /** Enhanced authentication of CONNECT, kept for re-authentication. */
  readonly enhanced: EnhancedAuth | null
  /** Decodes a frame; null after a malformed one (the connection is closing). */
  parse(frame: Buffer): Packet | null
  /** Reads nothing more from the client. */
  stopReading(): void
  close(reason: string, graceful?: boolean): void
  /** DISCONNECT: the will is discarded (unless `withWill`); the commit of that discard, null when none. */
  disconnectWill(withWill: boolean): Promise<unknown> | null
}

/** DISCONNECT without reason code and properties, as mqtt-packet reads it (reason code 0 in MQTT 5). */
const PLAIN_DISCONNECT = Object.freeze({ cmd: 'disconnect' }) as DisconnectPacket

export class PacketRouter {
  /** Made with the first PUBLISH or PUBREL: an idle connection (and a subscriber only) holds none. */
  private inboundFlows: InboundFlows | null = null
  /** Made with the first SUBSCRIBE or UNSUBSCRIBE (or a resumed session's subscriptions). */
  private subscribeFlows: SubscribeFlows | null = null

  constructor(
    private readonly peer: RouterPeer,
    private readonly host: ConnectionHost,
  ) {}

  private get inbound(): InboundFlows {
    const peer = this.peer
    this.inboundFlows ??= new InboundFlows(peer, this.host, peer.v5 && this.host.topicAliasMaximum > 0)
    return this.inboundFlows
  }

  private get subscribes(): SubscribeFlows {
    this.subscribeFlows ??= new SubscribeFlows(this.peer, this.host)
    return this.subscribeFlows
  }

  /** A resumed session: its subscriptions catch up and go live. */
  resubscribe(session: Session): void {
    if (session.subscriptions.size > 0) this.subscribes.resubscribe(session)
  }

  /** One packet: bytes `start` to `end` of `buf`, its body from `body`. */
  onFrame(buf: Buffer, start: number, body: number, end: number): void {
    const type = buf[start]!
    if (type >> 4 === 3) {
      this.inbound.onPublish(buf, start, body, end)
      return
    }
    const peer = this.peer
    const length = end - start
    // A plain PUBACK (no reason code, no properties; flags 0) is four bytes: read it without
    // mqtt-packet, whose parser (BufferList, packet object, events) was ~8 % of the CPU of S3.
    if (type === 0x40 && length === 4) {
      peer.session!.complete((buf[start + 2]! << 8) | buf[start + 3]!, 1, 'publish')
      return
    }
    if (type === 0xc0 && length === 2) {
      this.pong() // PINGREQ, read without a parser: an idle connection keeps none
      return
    }
    if (type === 0xe0 && length === 2) {
      this.onDisconnect(PLAIN_DISCONNECT) // nor for a plain DISCONNECT (no reason code, no properties)
      return
    }
    const packet = peer.parse(buf.subarray(start, end))
    if (packet === null) return
    switch (packet.cmd) {
      case 'puback':
        peer.session!.complete(packet.messageId!, 1, 'publish')
        return
      case 'pubrec':
        onPubrec(peer, this.host.onFlowStep, packet.messageId!, packet.reasonCode ?? 0)
        return
      case 'pubcomp':
        peer.session!.complete(packet.messageId!, 2, 'pubrel')
        return
      case 'pubrel':
        this.inbound.onPubrel(packet.messageId!)
        return
      case 'subscribe':
        this.subscribes.onSubscribe(packet)
        return
      case 'unsubscribe':
        this.subscribes.onUnsubscribe(packet)
        return
      case 'pingreq':
        this.pong()
        return
      case 'disconnect':
        this.onDisconnect(packet)
        return
      case 'auth':
        // MQTT 5 section 4.12: AUTH without enhanced authentication at CONNECT is a protocol error.
        if (peer.enhanced === null)
          peer.protocolViolation(new ProtocolError('AUTH with an authentication method not used at CONNECT'))
        else peer.enhanced.onAuth(packet)
        return
      case 'connect':
        // [MQTT-3.1.0-2] a second CONNECT is a protocol violation.
        peer.protocolViolation(new ProtocolError('second CONNECT'))
        return
      default:
        // CONNACK, SUBACK, UNSUBACK, PINGRESP only travel server -> client.
        peer.protocolViolation(new ProtocolError(`unexpected ${packet.cmd} from a client`))
    }
  }

  /** PINGRESP, after this client's earlier publishes commit (see InboundFlows.pong); at once without any. */
  private pong(): void {
    if (this.inboundFlows === null) this.peer.write(PINGRESP)
    else this.inboundFlows.pong()
  }

  private onDisconnect(packet: DisconnectPacket): void {
    const peer = this.peer
    const session = peer.session!
    const rc = packet.reasonCode ?? 0
    const expiry = packet.properties?.sessionExpiryInterval
    if (peer.v5 && expiry !== undefined) {
      if (session.expiry === 0 && expiry !== 0) {
        // [MQTT-3.14.2-2]
        peer.protocolViolation(new ProtocolError('session expiry set at DISCONNECT after 0 at CONNECT'))
        return
      }
      session.setExpiry(expiry)
    }
    // Normal disconnect discards the will [MQTT-3.1.2-10]; v5 0x04 asks for it.
    const withWill = peer.v5 && rc === ReasonCode.DisconnectWithWill
    const discarded = peer.disconnectWill(withWill)
    if (discarded === null) {
      peer.close('client disconnected', withWill ? undefined : true)
      return
    }
    // The connection closes once the discard is committed. Nothing is read meanwhile, and a close by the
    // peer publishes nothing.
    peer.stopReading()
    settle(peer, discarded, () => {
      this.host.onFlowStep?.('will-discard-persisted')
      peer.close('client disconnected', true)
    })
  }
}
