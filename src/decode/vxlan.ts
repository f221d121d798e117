import { A, type DecodeCounters } from './anomalies.js';

export const VXLAN_PORT = 4789;
export const VXLAN_HEADER = 8;
/** The I flag: the VNI is valid (RFC 7348 §5). The other flag bits are reserved and ignored on receipt. */
const FLAG_I = 0x08;

/**
 * The 8-byte VXLAN header at `off` (RFC 7348 §5): flags, 24 reserved bits, the 24-bit VNI, 8
 * reserved bits. An Ethernet frame follows it. Returns the VNI, or -1 (counted) when the header
 * is cut short by `end` or lacks the I flag.
 */
export function decodeVxlan(b: Uint8Array, off: number, end: number, c: DecodeCounters): number {
  if (end - off < VXLAN_HEADER) {
    c.anomalies[A.vxlan_truncated]++;
    return -1;
  }
  if ((b[off] & FLAG_I) === 0) {
    c.anomalies[A.vxlan_bad_flags]++;
    return -1;
  }
  return (b[off + 4] << 16) | (b[off + 5] << 8) | b[off + 6];
}
