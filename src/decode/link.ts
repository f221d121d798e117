import {
  LINK_DLT_RAW_12,
  LINK_DLT_RAW_14,
  LINK_IPV4,
  LINK_IPV6,
  LINK_LINUX_SLL,
  LINK_LINUX_SLL2,
  LINK_LOOP,
  LINK_NULL,
  LINK_RAW,
  type LinkType,
} from '../linktypes.js';
import { A, type DecodeCounters } from './anomalies.js';
import { decodeEtherType, ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from './ethernet.js';
import type { Packet } from './packet.js';

/** Not an EtherType: the decoder counts the frame as not_ip. */
const NOT_IP = 0;
/** Linux ARPHRD_NETLINK: a cooked header whose protocol field is a netlink family, not an EtherType. */
const ARPHRD_NETLINK = 824;
const SLL_HEADER = 16;
const SLL2_HEADER = 20;
const LOOPBACK_HEADER = 4;
/** BSD address families: AF_INET is 2 everywhere; AF_INET6 is 24 (Net/OpenBSD), 28 (FreeBSD), 30 (macOS). */
const AF_INET = 2;
const AF_INET6 = new Set([24, 28, 30]);

/**
 * The link layers other than Ethernet that pcap files carry (cooked, loopback, raw IP). Like
 * decodeEthernet, sets etherType and l3Offset for the IP decoders; a non-IP protocol leaves an
 * etherType the decoder counts as not_ip.
 */
export function decodeLink(p: Packet, off: number, linkType: LinkType, c: DecodeCounters): boolean {
  switch (linkType) {
    case LINK_RAW:
    case LINK_DLT_RAW_12:
    case LINK_DLT_RAW_14:
      return decodeRawIp(p, off, 0, c);
    case LINK_IPV4:
      return decodeRawIp(p, off, 4, c);
    case LINK_IPV6:
      return decodeRawIp(p, off, 6, c);
    case LINK_LINUX_SLL:
      return decodeSll(p, off, c);
    case LINK_LINUX_SLL2:
      return decodeSll2(p, off, c);
    case LINK_NULL:
      return decodeLoopback(p, off, false, c);
    case LINK_LOOP:
      return decodeLoopback(p, off, true, c);
    default:
      c.anomalies[A.link_unknown]++;
      return false;
  }
}

function setL3(p: Packet, etherType: number, l3Offset: number): boolean {
  p.vlanDepth = 0;
  p.etherType = etherType;
  p.l3Offset = l3Offset;
  return true;
}

/**
 * No link header: the IP version nibble says which. Checked against `only` (4 or 6; 0: either)
 * too, since the IPv6 decoder trusts what the link layer names.
 */
function decodeRawIp(p: Packet, off: number, only: 0 | 4 | 6, c: DecodeCounters): boolean {
  if (p.capEnd - off < 1) {
    c.anomalies[A.link_truncated]++;
    return false;
  }
  const version = p.buf[off] >> 4;
  if (version === 4 && only !== 6) return setL3(p, ETHERTYPE_IPV4, off);
  if (version === 6 && only !== 4) return setL3(p, ETHERTYPE_IPV6, off);
  c.anomalies[A.raw_ip_bad_version]++;
  return false;
}

/** Linux cooked v1: packet type, ARPHRD type, address length, 8 address bytes, protocol. */
function decodeSll(p: Packet, off: number, c: DecodeCounters): boolean {
  if (p.capEnd - off < SLL_HEADER) {
    c.anomalies[A.link_truncated]++;
    return false;
  }
  const b = p.buf;
  if (((b[off + 2] << 8) | b[off + 3]) === ARPHRD_NETLINK) return setL3(p, NOT_IP, off + SLL_HEADER);
  // libpcap puts a stripped VLAN tag back at the protocol field, as in Ethernet.
  return decodeEtherType(p, (b[off + 14] << 8) | b[off + 15], off + SLL_HEADER, c);
}

/** Linux cooked v2: protocol first, then reserved, interface index, ARPHRD type, packet type, address. */
function decodeSll2(p: Packet, off: number, c: DecodeCounters): boolean {
  if (p.capEnd - off < SLL2_HEADER) {
    c.anomalies[A.link_truncated]++;
    return false;
  }
  const b = p.buf;
  if (((b[off + 8] << 8) | b[off + 9]) === ARPHRD_NETLINK) return setL3(p, NOT_IP, off + SLL2_HEADER);
  return decodeEtherType(p, (b[off] << 8) | b[off + 1], off + SLL2_HEADER, c);
}

/**
 * BSD loopback: a 4-byte address family. LOOP is in network byte order; NULL in the capturing
 * host's, which the file does not always share (a pcap rewritten by another tool keeps the
 * payload bytes): families are small, so the non-zero end of the word says which order it is.
 */
function decodeLoopback(p: Packet, off: number, bigEndian: boolean, c: DecodeCounters): boolean {
  if (p.capEnd - off < LOOPBACK_HEADER) {
    c.anomalies[A.link_truncated]++;
    return false;
  }
  const b = p.buf;
  const be = (b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3];
  const le = (b[off + 3] << 24) | (b[off + 2] << 16) | (b[off + 1] << 8) | b[off];
  const family = bigEndian || (le & 0xffff0000) !== 0 ? be : le;
  const l3 = off + LOOPBACK_HEADER;
  if (family === AF_INET) return setL3(p, ETHERTYPE_IPV4, l3);
  if (AF_INET6.has(family)) return setL3(p, ETHERTYPE_IPV6, l3);
  return setL3(p, NOT_IP, l3);
}
