import { A, type DecodeCounters } from './anomalies.js';
import { IP_FRAGMENT, type Packet } from './packet.js';

export const IPPROTO_TCP = 6;

/**
 * IPv4 with options. Returns the protocol number, -1 if malformed, or IP_FRAGMENT for a fragment
 * (its fields in p.frag*; fragments.ts puts the datagram back together).
 */
export function decodeIpv4(p: Packet, c: DecodeCounters): number {
  const b = p.buf;
  const off = p.l3Offset;
  const avail = p.capEnd - off;
  if (avail < 20) {
    c.anomalies[A.ipv4_truncated]++;
    return -1;
  }
  const vihl = b[off];
  if (vihl >> 4 !== 4) {
    c.anomalies[A.ipv4_bad_version]++;
    return -1;
  }
  const ihl = (vihl & 0x0f) * 4;
  if (ihl < 20) {
    c.anomalies[A.ipv4_bad_header_length]++;
    return -1;
  }
  if (avail < ihl) {
    c.anomalies[A.ipv4_truncated]++;
    return -1;
  }
  let total = (b[off + 2] << 8) | b[off + 3];
  // GSO/GRO super-frames beyond 64 KiB carry total length 0 (BIG TCP): trust the frame.
  if (total === 0) total = avail + p.wireMissing;
  if (total < ihl) {
    c.anomalies[A.ipv4_bad_total_length]++;
    return -1;
  }
  p.ipVersion = 4;
  p.src[0] = ((b[off + 12] << 24) | (b[off + 13] << 16) | (b[off + 14] << 8) | b[off + 15]) >>> 0;
  p.dst[0] = ((b[off + 16] << 24) | (b[off + 17] << 16) | (b[off + 18] << 8) | b[off + 19]) >>> 0;
  p.src[1] = p.src[2] = p.src[3] = 0;
  p.dst[1] = p.dst[2] = p.dst[3] = 0;
  p.ipEnd = off + total;
  p.l4Offset = off + ihl;
  const frag = ((b[off + 6] << 8) | b[off + 7]) & 0x3fff; // MF flag + offset
  if (frag !== 0) {
    p.fragId = (b[off + 4] << 8) | b[off + 5];
    p.fragOffset = (frag & 0x1fff) * 8;
    p.fragMore = (frag & 0x2000) !== 0;
    p.fragProto = b[off + 9];
    return IP_FRAGMENT;
  }
  return b[off + 9];
}
