// The link-layer header types: the vocabulary capture (which reads them from files) and decode
// (which places the IP header by them) share, so it lives below both.

/**
 * What the frame starts with, as a tcpdump.org LINKTYPE_ number. A source that passes none
 * (the AF_PACKET ring: vxlan0 is always Ethernet) means LINK_ETHERNET. A pcap source passes
 * the file's (or the pcapng interface's) type, and only the ones listed here: an unknown one
 * is a format error there, never a frame that decode cannot place.
 */
export type LinkType = number;
export const LINK_NULL = 0; // BSD loopback: 4-byte address family in the capturing host's byte order
export const LINK_ETHERNET = 1;
export const LINK_RAW = 101; // raw IPv4 or IPv6, by the version nibble
export const LINK_DLT_RAW_12 = 12; // DLT_RAW as some files carry it (not remapped to 101)
export const LINK_DLT_RAW_14 = 14; // DLT_RAW on OpenBSD
export const LINK_LOOP = 108; // OpenBSD loopback: like NULL, in network byte order
export const LINK_LINUX_SLL = 113; // Linux cooked capture v1: 16-byte header
export const LINK_IPV4 = 228;
export const LINK_IPV6 = 229;
export const LINK_LINUX_SLL2 = 276; // Linux cooked capture v2: 20-byte header
export const LINK_TYPES: ReadonlyMap<LinkType, string> = new Map([
  [LINK_NULL, 'NULL'],
  [LINK_ETHERNET, 'ETHERNET'],
  [LINK_DLT_RAW_12, 'RAW'],
  [LINK_DLT_RAW_14, 'RAW'],
  [LINK_RAW, 'RAW'],
  [LINK_LOOP, 'LOOP'],
  [LINK_LINUX_SLL, 'LINUX_SLL'],
  [LINK_IPV4, 'IPV4'],
  [LINK_IPV6, 'IPV6'],
  [LINK_LINUX_SLL2, 'LINUX_SLL2'],
]);
