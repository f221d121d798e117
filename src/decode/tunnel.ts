/**
 * Decapsulation in user space, for a device that receives the mirror's tunnels itself (an
 * adapter's eth0 with no vxlan0, a Gateway Load Balancer target) and for pcap files captured
 * there: UDP 4789 → VXLAN → Ethernet, UDP 6081 → GENEVE → IPv4/IPv6/Ethernet. AWS Traffic
 * Mirroring sends VXLAN to the target; behind a GWLB endpoint, GWLB wraps that whole VXLAN
 * datagram (its outer IPv4 header on) in GENEVE with its own options, so the layers nest:
 * Ethernet/IP/UDP 6081/GENEVE/IP/UDP 4789/VXLAN/Ethernet/IP/TCP. The Decoder runs this once per
 * tunnel; the innermost VNI is the mirror session's (GWLB's GENEVE VNI is 0) and becomes the
 * packet's, which reassembly keys flows by.
 */
import { A, type DecodeCounters } from './anomalies.js';
import { decodeEthernet, ETHERTYPE_IPV4 } from './ethernet.js';
import { decodeGeneve, ETHERTYPE_TEB, GENEVE_PORT, type GeneveHeader } from './geneve.js';
import type { Packet } from './packet.js';
import { decodeUdp } from './udp.js';
import { decodeVxlan, VXLAN_HEADER, VXLAN_PORT } from './vxlan.js';

/** Tunnels inside each other at most: GWLB around a mirror session makes two. */
export const MAX_TUNNELS = 3;

/** What decapsulation keeps; `vnis` empty: every VNI. */
export interface EncapOptions {
  vnis: readonly number[];
}

export const TUNNEL_OK = 1;
export const TUNNEL_MALFORMED = 0;
/** A well-formed UDP datagram to neither port: the caller counts it (not_tunnel or not_tcp). */
export const TUNNEL_NONE = -1;

/**
 * The UDP datagram at p.l4Offset and the tunnel header in it. On TUNNEL_OK, p.vni is the tunnel's
 * VNI and etherType/l3Offset point at the inner packet for the IP decoders.
 */
export function decapsulate(p: Packet, geneve: GeneveHeader, c: DecodeCounters): number {
  const payload = decodeUdp(p, c);
  if (payload < 0) return TUNNEL_MALFORMED;
  if (p.dstPort === VXLAN_PORT) {
    const vni = decodeVxlan(p.buf, payload, p.capEnd, c);
    if (vni < 0) return TUNNEL_MALFORMED;
    p.vni = vni;
    return decodeEthernet(p, payload + VXLAN_HEADER, c) ? TUNNEL_OK : TUNNEL_MALFORMED;
  }
  if (p.dstPort === GENEVE_PORT) {
    if (!decodeGeneve(p.buf, payload, p.capEnd, geneve, c)) return TUNNEL_MALFORMED;
    p.vni = geneve.vni;
    if (geneve.protocol === ETHERTYPE_TEB) return decodeEthernet(p, geneve.payloadOffset, c) ? TUNNEL_OK : TUNNEL_MALFORMED;
    return innerIp(p, geneve.protocol, geneve.payloadOffset, c) ? TUNNEL_OK : TUNNEL_MALFORMED;
  }
  return TUNNEL_NONE;
}

/** GENEVE names the IP version; the IPv6 decoder trusts it, so check the version nibble. */
function innerIp(p: Packet, etherType: number, off: number, c: DecodeCounters): boolean {
  const v4 = etherType === ETHERTYPE_IPV4;
  if (p.capEnd - off < 1) {
    c.anomalies[v4 ? A.ipv4_truncated : A.ipv6_truncated]++;
    return false;
  }
  if (p.buf[off] >> 4 !== (v4 ? 4 : 6)) {
    c.anomalies[A.raw_ip_bad_version]++;
    return false;
  }
  p.vlanDepth = 0;
  p.etherType = etherType;
  p.l3Offset = off;
  return true;
}

/** Stands for the VNIs beyond the cap in VniCounts. */
export const VNI_OTHER = -1;
/** Distinct VNIs counted apart; the rest are counted together under VNI_OTHER (bounded metric labels). */
export const MAX_VNI_LABELS = 64;

/**
 * Frames decapsulated per innermost VNI: the `keep` VNIs (--vni) from 0 and always apart, then at
 * most `cap` other distinct VNIs.
 */
export class VniCounts {
  readonly frames = new Map<number, number>();
  private distinct = 0;
  private readonly cap: number;
  constructor(cap = MAX_VNI_LABELS, keep: readonly number[] = []) {
    for (const v of keep) this.frames.set(v, 0);
    this.cap = cap + this.frames.size;
    this.distinct = this.frames.size;
  }

  add(vni: number): void {
    const n = this.frames.get(vni);
    if (n !== undefined) this.frames.set(vni, n + 1);
    else if (this.distinct < this.cap) {
      this.frames.set(vni, 1);
      this.distinct++;
    } else this.frames.set(VNI_OTHER, (this.frames.get(VNI_OTHER) ?? 0) + 1);
  }
}
