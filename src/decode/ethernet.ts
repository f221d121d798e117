import { A, type DecodeCounters } from './anomalies.js';
import type { Packet } from './packet.js';

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;
const ETHERTYPE_QINQ = 0x88a8;
const MAX_VLAN_DEPTH = 2;

/** Ethernet II with up to two 802.1Q/802.1ad tags. Sets etherType and l3Offset. */
export function decodeEthernet(p: Packet, off: number, c: DecodeCounters): boolean {
  const b = p.buf;
  if (p.capEnd - off < 14) {
    c.anomalies[A.eth_truncated]++;
    return false;
  }
  return decodeEtherType(p, (b[off + 12] << 8) | b[off + 13], off + 14, c);
}

/**
 * From an EtherType and the offset just past it, steps over 802.1Q/802.1ad tags (Linux cooked
 * captures carry them the same way). Sets vlanDepth, etherType and l3Offset.
 */
export function decodeEtherType(p: Packet, type: number, pos: number, c: DecodeCounters): boolean {
  const b = p.buf;
  let depth = 0;
  while (type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ) {
    if (++depth > MAX_VLAN_DEPTH) {
      c.anomalies[A.vlan_too_deep]++;
      return false;
    }
    if (p.capEnd - pos < 4) {
      c.anomalies[A.vlan_truncated]++;
      return false;
    }
    type = (b[pos + 2] << 8) | b[pos + 3];
    pos += 4;
  }
  p.vlanDepth = depth;
  p.etherType = type;
  p.l3Offset = pos;
  return true;
}
