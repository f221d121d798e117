import { A, type DecodeCounters } from './anomalies.js';
import type { Packet } from './packet.js';

export const IPPROTO_UDP = 17;
const UDP_HEADER = 8;

/**
 * UDP (RFC 768) at p.l4Offset, for the tunnels decapsulation reads (tunnel.ts). Sets srcPort and
 * dstPort, and narrows capEnd to the datagram's end so the layers inside cannot read past it.
 * Returns the payload's offset, or -1 (counted). A length that disagrees with the IP packet is
 * malformed: shorter than the header, or longer than the IP payload. Shorter than the IP
 * payload is allowed (the rest is link padding).
 */
export function decodeUdp(p: Packet, c: DecodeCounters): number {
  const b = p.buf;
  const off = p.l4Offset;
  if (p.capEnd - off < UDP_HEADER) {
    c.anomalies[A.udp_truncated]++;
    return -1;
  }
  const len = (b[off + 4] << 8) | b[off + 5];
  if (len < UDP_HEADER || off + len > p.ipEnd) {
    c.anomalies[A.udp_bad_length]++;
    return -1;
  }
  p.srcPort = (b[off] << 8) | b[off + 1];
  p.dstPort = (b[off + 2] << 8) | b[off + 3];
  if (off + len < p.capEnd) p.capEnd = off + len;
  return off + UDP_HEADER;
}
