/**
 * The decoded view of one frame, filled in place by the layer decoders and reused for every
 * frame: no allocation per packet. Offsets point into `buf`, which is valid only while the
 * capture source's onFrame call runs. For a datagram reassembled from IP fragments, `buf` is an
 * owned buffer holding just that datagram (l3Offset 0); it too is only for the current call.
 */
export class Packet {
  buf: Uint8Array = new Uint8Array(0);
  /** End of captured bytes in buf (offset + capLen). */
  capEnd = 0;
  /** Bytes of this frame that were on the wire but not captured. */
  wireMissing = 0;

  /**
   * The innermost tunnel's VNI when decode took the frame out of VXLAN/GENEVE itself (tunnel.ts),
   * else -1. Part of the flow key: two mirror sessions may carry the same inner 5-tuple.
   */
  vni = -1;

  vlanDepth = 0;
  etherType = 0;
  l3Offset = 0;

  /** 4 or 6. */
  ipVersion = 0;
  /** IPv4 address as uint32, or the four 32-bit words of an IPv6 address. */
  readonly src = new Uint32Array(4);
  readonly dst = new Uint32Array(4);
  /** End of the IP datagram as announced by its header (may exceed capEnd when cut short). */
  ipEnd = 0;

  /**
   * Set by the IP decoders only for a fragment (they then return IP_FRAGMENT): its data is
   * [l4Offset, ipEnd) at byte fragOffset of the original datagram's payload.
   */
  fragId = 0;
  fragOffset = 0;
  fragMore = false;
  /** IPv4 protocol, or IPv6 Next Header in the fragment header. */
  fragProto = 0;

  l4Offset = 0;
  srcPort = 0;
  dstPort = 0;
  seq = 0;
  ack = 0;
  flags = 0;
  window = 0;
  payloadOffset = 0;
  /** Payload bytes present in buf. */
  payloadLength = 0;
  /** Payload bytes announced by the IP header but missing from the capture. */
  payloadMissing = 0;

  /** TCP options (RFC 7323 timestamps; RFC 2385 MD5 / RFC 5925 AO signatures), parsed per segment. */
  hasTimestamp = false;
  tsVal = 0;
  tsEcr = 0;
  /** The segment carries a TCP-MD5 (kind 19) or TCP-AO (kind 29) option. */
  signed = false;
}

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

/** Returned by the IP decoders for a fragment of a bigger datagram (beyond any protocol number). */
export const IP_FRAGMENT = 256;
