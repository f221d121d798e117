import { A, type DecodeCounters } from './anomalies.js';
import type { Packet } from './packet.js';

/**
 * TCP with options. Checksums are not verified: AWS mirrors frames whose checksums the NIC had
 * not yet filled in (offload), so a bad checksum is normal here, not a reason to drop.
 */
export function decodeTcp(p: Packet, c: DecodeCounters): boolean {
  const b = p.buf;
  const off = p.l4Offset;
  if (p.capEnd - off < 20 || p.ipEnd - off < 20) {
    c.anomalies[A.tcp_truncated]++;
    return false;
  }
  const dataOff = (b[off + 12] >> 4) * 4;
  if (dataOff < 20 || off + dataOff > p.ipEnd) {
    c.anomalies[A.tcp_bad_data_offset]++;
    return false;
  }
  if (off + dataOff > p.capEnd) {
    c.anomalies[A.tcp_truncated]++;
    return false;
  }
  p.srcPort = (b[off] << 8) | b[off + 1];
  p.dstPort = (b[off + 2] << 8) | b[off + 3];
  p.seq = ((b[off + 4] << 24) | (b[off + 5] << 16) | (b[off + 6] << 8) | b[off + 7]) >>> 0;
  p.ack = ((b[off + 8] << 24) | (b[off + 9] << 16) | (b[off + 10] << 8) | b[off + 11]) >>> 0;
  p.flags = b[off + 13];
  p.window = (b[off + 14] << 8) | b[off + 15];
  p.payloadOffset = off + dataOff;
  // Ethernet padding lies past ipEnd; a capture cut short ends before it.
  const end = p.ipEnd < p.capEnd ? p.ipEnd : p.capEnd;
  p.payloadLength = end - p.payloadOffset;
  p.payloadMissing = p.ipEnd - end;
  return true;
}
