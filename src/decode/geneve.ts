import { A, S, type DecodeCounters } from './anomalies.js';
import { ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from './ethernet.js';

export const GENEVE_PORT = 6081;
const GENEVE_HEADER = 8;
/** Transparent Ethernet bridging: the payload is an Ethernet frame. */
export const ETHERTYPE_TEB = 0x6558;
/** The option class AWS Gateway Load Balancer registered for its TLVs. */
export const GWLB_OPTION_CLASS = 0x0108;
const GWLB_ENDPOINT_ID = 1;
const GWLB_ATTACHMENT_ID = 2;
const GWLB_FLOW_COOKIE = 3;

/** One GENEVE header, filled in place and reused: offsets point into the frame. */
export class GeneveHeader {
  vni = 0;
  /** An EtherType: what the payload starts with (IPv4, IPv6 or Ethernet). */
  protocol = 0;
  payloadOffset = 0;
  /** GWLB's 64-bit endpoint (GWLBE/VPCE) and attachment ids: their offsets in the frame, -1 when absent. */
  gwlbEndpoint = -1;
  gwlbAttachment = -1;
  /** GWLB's 32-bit flow cookie, -1 when absent. */
  gwlbCookie = -1;
}

/**
 * The GENEVE header at `off` (RFC 8926 §3.4): version (2 bits, must be 0), option length in
 * 4-byte words (6), O and C bits, reserved, protocol type, 24-bit VNI, reserved, then the
 * options as TLVs (class 16 bits, type 8, 3 reserved bits, length 5 bits in 4-byte words, data).
 * Gateway Load Balancer sends three options of class 0x0108 (the endpoint id, the attachment id,
 * the flow cookie: 32 bytes, Opt Len 8) and VNI 0; they are read, other options are stepped over.
 * The C bit asks a tunnel endpoint to drop packets with critical options it does not know; we are
 * a passive reader, not an endpoint, so it changes nothing here.
 * Returns false when malformed (counted), or for a control message (O bit; skipped: no payload of
 * ours). `end`: the end of the UDP payload present.
 */
export function decodeGeneve(b: Uint8Array, off: number, end: number, h: GeneveHeader, c: DecodeCounters): boolean {
  if (end - off < GENEVE_HEADER) {
    c.anomalies[A.geneve_truncated]++;
    return false;
  }
  if (b[off] >> 6 !== 0) {
    c.anomalies[A.geneve_bad_version]++;
    return false;
  }
  const optEnd = off + GENEVE_HEADER + (b[off] & 0x3f) * 4;
  if (optEnd > end || !readOptions(b, off + GENEVE_HEADER, optEnd, h)) {
    c.anomalies[A.geneve_bad_option_length]++;
    return false;
  }
  if (b[off + 1] & 0x80) {
    c.skips[S.geneve_control]++;
    return false;
  }
  const protocol = (b[off + 2] << 8) | b[off + 3];
  if (protocol !== ETHERTYPE_IPV4 && protocol !== ETHERTYPE_IPV6 && protocol !== ETHERTYPE_TEB) {
    c.anomalies[A.geneve_bad_protocol]++;
    return false;
  }
  h.protocol = protocol;
  h.vni = (b[off + 4] << 16) | (b[off + 5] << 8) | b[off + 6];
  h.payloadOffset = optEnd;
  return true;
}

/** Walks the TLVs in [pos, optEnd); false when one runs past optEnd. */
function readOptions(b: Uint8Array, pos: number, optEnd: number, h: GeneveHeader): boolean {
  h.gwlbEndpoint = h.gwlbAttachment = h.gwlbCookie = -1;
  while (pos < optEnd) {
    if (optEnd - pos < 4) return false;
    const len = (b[pos + 3] & 0x1f) * 4;
    const data = pos + 4;
    if (data + len > optEnd) return false;
    if (((b[pos] << 8) | b[pos + 1]) === GWLB_OPTION_CLASS) {
      const type = b[pos + 2];
      if (type === GWLB_ENDPOINT_ID && len === 8) h.gwlbEndpoint = data;
      else if (type === GWLB_ATTACHMENT_ID && len === 8) h.gwlbAttachment = data;
      else if (type === GWLB_FLOW_COOKIE && len === 4) h.gwlbCookie = ((b[data] << 24) | (b[data + 1] << 16) | (b[data + 2] << 8) | b[data + 3]) >>> 0;
    }
    pos = data + len;
  }
  return true;
}
