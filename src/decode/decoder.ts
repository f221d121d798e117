import { LINK_ETHERNET, type LinkType } from '../linktypes.js';
import { S, DecodeCounters } from './anomalies.js';
import { decodeEthernet, ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from './ethernet.js';
import { DEFAULT_FRAGMENT_OPTIONS, FragmentReassembler, type FragmentOptions } from './fragments.js';
import { decodeIpv4, IPPROTO_TCP } from './ipv4.js';
import { decodeIpv6 } from './ipv6.js';
import { decodeLink } from './link.js';
import { IP_FRAGMENT, Packet } from './packet.js';
import { decodeTcp } from './tcp.js';

/**
 * Runs the layers in order over one frame and fills the reused Packet. Returns the packet when
 * it is a TCP segment from or to `port`, else null (counted as an anomaly or a skip). A fragment
 * is held until it completes its datagram; the frame that does returns the whole datagram.
 */
export class Decoder {
  readonly counters = new DecodeCounters();
  readonly fragments: FragmentReassembler;
  private readonly packet = new Packet();
  constructor(
    private readonly port: number,
    fragmentOptions: Partial<FragmentOptions> = {},
  ) {
    this.fragments = new FragmentReassembler(this.counters, { ...DEFAULT_FRAGMENT_OPTIONS, ...fragmentOptions });
  }

  /** Sets the clock for fragment timeouts and gives up the stale ones; call it with the table's sweep. */
  sweep(now: number): void {
    this.fragments.sweep(now);
  }

  /** Capture ended: counts the datagrams still waiting for fragments (fragment_incomplete). */
  closeAll(): void {
    this.fragments.closeAll();
  }

  /** `linkType` as in the FrameHandler contract: none (the ring) means Ethernet. */
  decode(buf: Uint8Array, offset: number, capLen: number, wireLen: number, linkType: LinkType = LINK_ETHERNET): Packet | null {
    const p = this.packet;
    const c = this.counters;
    p.buf = buf;
    p.capEnd = offset + capLen;
    p.wireMissing = wireLen > capLen ? wireLen - capLen : 0;
    if (!(linkType === LINK_ETHERNET ? decodeEthernet(p, offset, c) : decodeLink(p, offset, linkType, c))) return null;
    let proto: number;
    if (p.etherType === ETHERTYPE_IPV4) proto = decodeIpv4(p, c);
    else if (p.etherType === ETHERTYPE_IPV6) proto = decodeIpv6(p, c);
    else {
      c.skips[S.not_ip]++;
      return null;
    }
    // An IPv4 fragment names its protocol: other protocols are not worth the memory.
    if (proto === IP_FRAGMENT && p.ipVersion === 4 && p.fragProto !== IPPROTO_TCP) proto = p.fragProto;
    // A reassembled IPv6 datagram may hold yet another fragment header: it goes round again.
    while (proto === IP_FRAGMENT) {
      const datagram = this.fragments.add(p);
      if (datagram === null) return null;
      proto = this.decodeDatagram(p, datagram);
    }
    if (proto < 0) return null;
    if (proto !== IPPROTO_TCP) {
      c.skips[S.not_tcp]++;
      return null;
    }
    if (!decodeTcp(p, c)) return null;
    if (p.dstPort !== this.port && p.srcPort !== this.port) {
      c.skips[S.other_port]++;
      return null;
    }
    return p;
  }

  /** Points the packet at a reassembled datagram and decodes its IP header again. */
  private decodeDatagram(p: Packet, datagram: Uint8Array): number {
    p.buf = datagram;
    p.l3Offset = 0;
    p.capEnd = datagram.length;
    p.wireMissing = 0;
    return p.ipVersion === 4 ? decodeIpv4(p, this.counters) : decodeIpv6(p, this.counters);
  }
}
