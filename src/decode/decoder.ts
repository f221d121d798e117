import { LINK_ETHERNET, type LinkType } from '../linktypes.js';
import { A, S, DecodeCounters } from './anomalies.js';
import { decodeEthernet, ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from './ethernet.js';
import { DEFAULT_FRAGMENT_OPTIONS, FragmentReassembler, type FragmentOptions } from './fragments.js';
import { GeneveHeader } from './geneve.js';
import { decodeIpv4, IPPROTO_TCP } from './ipv4.js';
import { decodeIpv6 } from './ipv6.js';
import { decodeLink } from './link.js';
import { IP_FRAGMENT, Packet } from './packet.js';
import { decodeTcp } from './tcp.js';
import { decapsulate, MAX_TUNNELS, MAX_VNI_LABELS, TUNNEL_NONE, TUNNEL_OK, VniCounts, type EncapOptions } from './tunnel.js';
import { IPPROTO_UDP } from './udp.js';

/** decodeIp's answer when the frame stops there (counted, or a fragment held). */
const STOP = -1;

/**
 * Runs the layers in order over one frame and fills the reused Packet. Returns the packet when
 * it is a TCP segment from or to `port`, else null (counted as an anomaly or a skip). A fragment
 * is held until it completes its datagram; the frame that does returns the whole datagram.
 * With `encap`, frames are tunnels to take apart first (tunnel.ts): only what came through one
 * is decoded further, and its VNI is counted and kept in the packet.
 */
export class Decoder {
  readonly counters = new DecodeCounters();
  readonly fragments: FragmentReassembler;
  /** Frames decapsulated, per innermost VNI; empty without `encap`. */
  readonly vnis: VniCounts;
  private readonly packet = new Packet();
  private readonly geneve = new GeneveHeader();
  private readonly keepVnis: ReadonlySet<number> | null;
  constructor(
    private readonly port: number,
    fragmentOptions: Partial<FragmentOptions> = {},
    private readonly encap: EncapOptions | null = null,
  ) {
    this.fragments = new FragmentReassembler(this.counters, { ...DEFAULT_FRAGMENT_OPTIONS, ...fragmentOptions });
    this.keepVnis = encap && encap.vnis.length > 0 ? new Set(encap.vnis) : null;
    this.vnis = new VniCounts(MAX_VNI_LABELS, encap?.vnis ?? []);
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
    p.vni = -1;
    if (!(linkType === LINK_ETHERNET ? decodeEthernet(p, offset, c) : decodeLink(p, offset, linkType, c))) return null;
    let proto = this.decodeIp(p);
    if (this.encap !== null) proto = this.decapsulate(p, proto);
    if (proto === STOP) return null;
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

  /** The IP layer named by p.etherType, through fragment reassembly: the upper protocol, or STOP. */
  private decodeIp(p: Packet): number {
    const c = this.counters;
    let proto: number;
    if (p.etherType === ETHERTYPE_IPV4) proto = decodeIpv4(p, c);
    else if (p.etherType === ETHERTYPE_IPV6) proto = decodeIpv6(p, c);
    else {
      c.skips[S.not_ip]++;
      return STOP;
    }
    // An IPv4 fragment names its protocol: other protocols are not worth the memory (UDP is, for tunnels).
    if (proto === IP_FRAGMENT && p.ipVersion === 4 && p.fragProto !== IPPROTO_TCP && !(this.encap !== null && p.fragProto === IPPROTO_UDP)) proto = p.fragProto;
    // A reassembled IPv6 datagram may hold yet another fragment header: it goes round again.
    while (proto === IP_FRAGMENT) {
      const datagram = this.fragments.add(p);
      if (datagram === null) return STOP;
      proto = this.decodeDatagram(p, datagram);
    }
    return proto < 0 ? STOP : proto;
  }

  /**
   * Takes the tunnels off, innermost last: returns the protocol inside them, or STOP. A frame that
   * came through no tunnel is not ours (not_tunnel); one of a VNI not kept is other_vni.
   */
  private decapsulate(p: Packet, proto: number): number {
    const c = this.counters;
    let depth = 0;
    for (; proto === IPPROTO_UDP; depth++) {
      if (depth === MAX_TUNNELS) {
        c.anomalies[A.encap_too_deep]++;
        return STOP;
      }
      const r = decapsulate(p, this.geneve, c);
      if (r === TUNNEL_NONE) break;
      if (r !== TUNNEL_OK) return STOP;
      proto = this.decodeIp(p);
      if (proto === STOP) {
        this.vnis.add(p.vni);
        return STOP;
      }
    }
    if (depth === 0) {
      if (proto !== STOP) c.skips[S.not_tunnel]++;
      return STOP;
    }
    this.vnis.add(p.vni);
    if (this.keepVnis !== null && !this.keepVnis.has(p.vni)) {
      c.skips[S.other_vni]++;
      return STOP;
    }
    return proto;
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
