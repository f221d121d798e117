import { A, type DecodeCounters } from './anomalies.js';
import { IP_FRAGMENT, type Packet } from './packet.js';

const MAX_EXT_HEADERS = 8;

function word(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/**
 * IPv6, walking past hop-by-hop (0), routing (43), destination options (60) and AH (51)
 * headers, and atomic fragment headers (44 with offset 0 and M=0, RFC 6946: a whole packet).
 * Returns the upper-layer protocol, -1, or IP_FRAGMENT for a real fragment (fields in p.frag*,
 * l4Offset just past the fragment header).
 */
export function decodeIpv6(p: Packet, c: DecodeCounters): number {
  const b = p.buf;
  const off = p.l3Offset;
  if (p.capEnd - off < 40) {
    c.anomalies[A.ipv6_truncated]++;
    return -1;
  }
  let payloadLen = (b[off + 4] << 8) | b[off + 5];
  // Jumbo/BIG TCP GRO frames carry payload length 0: trust the frame.
  if (payloadLen === 0) payloadLen = p.capEnd + p.wireMissing - off - 40;
  let next = b[off + 6];
  for (let i = 0; i < 4; i++) {
    p.src[i] = word(b, off + 8 + i * 4);
    p.dst[i] = word(b, off + 24 + i * 4);
  }
  let pos = off + 40;
  for (let n = 0; ; n++) {
    if (next !== 0 && next !== 43 && next !== 60 && next !== 51 && next !== 44) break;
    if (n >= MAX_EXT_HEADERS) {
      c.anomalies[A.ipv6_too_many_ext]++;
      return -1;
    }
    if (p.capEnd - pos < 8) {
      c.anomalies[A.ipv6_ext_truncated]++;
      return -1;
    }
    if (next === 44) {
      const fo = (b[pos + 2] << 8) | b[pos + 3]; // offset << 3 | 2 reserved bits | M
      if ((fo & 0xfff9) !== 0) return fragment(p, b, off, pos, payloadLen, fo);
      c.anomalies[A.ipv6_atomic_fragment]++;
    }
    const len = next === 51 ? (b[pos + 1] + 2) * 4 : next === 44 ? 8 : (b[pos + 1] + 1) * 8;
    next = b[pos];
    pos += len;
  }
  if (pos > p.capEnd) {
    c.anomalies[A.ipv6_ext_truncated]++;
    return -1;
  }
  p.ipVersion = 6;
  p.ipEnd = off + 40 + payloadLen;
  p.l4Offset = pos;
  return next;
}

function fragment(p: Packet, b: Uint8Array, off: number, pos: number, payloadLen: number, fo: number): number {
  p.ipVersion = 6;
  p.ipEnd = off + 40 + payloadLen;
  p.l4Offset = pos + 8;
  p.fragProto = b[pos];
  p.fragOffset = fo & 0xfff8;
  p.fragMore = (fo & 1) !== 0;
  p.fragId = word(b, pos + 4);
  return IP_FRAGMENT;
}
