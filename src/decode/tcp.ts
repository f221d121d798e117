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
  p.hasTimestamp = false;
  p.tsVal = p.tsEcr = 0;
  p.signed = false;
  if (dataOff === 32 && b[off + 20] === 1 && b[off + 21] === 1 && b[off + 22] === 8 && b[off + 23] === 10) {
    // NOP, NOP, timestamps: what Linux puts on nearly every segment (its tcp_fast_parse_options).
    timestamps(p, b, off + 22);
  } else if (dataOff > 20) {
    decodeTcpOptions(p, b, off + 20, off + dataOff);
  }
  return true;
}

function timestamps(p: Packet, b: Uint8Array, pos: number): void {
  p.hasTimestamp = true;
  p.tsVal = ((b[pos + 2] << 24) | (b[pos + 3] << 16) | (b[pos + 4] << 8) | b[pos + 5]) >>> 0;
  p.tsEcr = ((b[pos + 6] << 24) | (b[pos + 7] << 16) | (b[pos + 8] << 8) | b[pos + 9]) >>> 0;
}

const OPT_EOL = 0;
const OPT_NOP = 1;
const OPT_TIMESTAMP = 8;
const OPT_MD5 = 19;
const OPT_AO = 29;

/**
 * Timestamps (RFC 7323) and signatures (MD5 RFC 2385, AO RFC 5925), with the lengths Linux
 * accepts. An option that is too short or runs past the header ends parsing, as in Linux's
 * tcp_parse_options: the options are unreadable but the segment's payload is still valid.
 */
function decodeTcpOptions(p: Packet, b: Uint8Array, pos: number, end: number): void {
  while (pos < end) {
    const kind = b[pos];
    if (kind === OPT_EOL) return;
    if (kind === OPT_NOP) {
      pos++;
      continue;
    }
    if (end - pos < 2) return;
    const len = b[pos + 1];
    if (len < 2 || len > end - pos) return;
    if (kind === OPT_TIMESTAMP && len === 10) timestamps(p, b, pos);
    else if ((kind === OPT_MD5 && len === 18) || (kind === OPT_AO && len >= 4)) {
      p.signed = true;
    }
    pos += len;
  }
}
