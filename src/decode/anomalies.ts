/**
 * Every way a frame can fail to decode, by name. A malformed frame is counted here and skipped;
 * it never throws out of the capture loop. Counting is an array increment so it costs nothing
 * per packet; the metrics stage reads the array when scraped.
 *
 * `fragment_*` count IP datagrams given up by reassembly (fragments.ts), once per datagram.
 * `ipv6_atomic_fragment` is the one anomaly that drops nothing: a fragment header that was not
 * needed (offset 0, no more fragments; RFC 6946), decoded as the whole packet it is. It is
 * unusual enough to show (Suricata's "unneeded fragment header").
 * `link_*` and `raw_ip_*` come only from pcap files (link.ts): a frame shorter than its cooked or
 * loopback header, a link type no source should hand on, a raw-IP frame that is neither v4 nor v6
 * (or not the one its link type names), and an IP packet inside GENEVE that is not the version the
 * header's protocol type names.
 * `udp_*`, `vxlan_*`, `geneve_*` and `encap_too_deep` come only from user-space decapsulation
 * (--encap-interface, --pcap-encap; tunnel.ts): a UDP header cut short or whose length disagrees
 * with its IP packet; a VXLAN header cut short or without the I flag (RFC 7348 §5); a GENEVE header
 * cut short, of a version other than 0, whose options run past the packet or past their own
 * length, or whose protocol type is not IPv4, IPv6 or Ethernet (RFC 8926 §3.4); more tunnels
 * inside each other than GWLB around Traffic Mirroring makes.
 */
export const ANOMALIES = [
  'link_truncated',
  'link_unknown',
  'raw_ip_bad_version',
  'eth_truncated',
  'vlan_truncated',
  'vlan_too_deep',
  'ipv4_truncated',
  'ipv4_bad_version',
  'ipv4_bad_header_length',
  'ipv4_bad_total_length',
  'ipv6_truncated',
  'ipv6_ext_truncated',
  'ipv6_atomic_fragment',
  'ipv6_too_many_ext',
  'udp_truncated',
  'udp_bad_length',
  'vxlan_truncated',
  'vxlan_bad_flags',
  'geneve_truncated',
  'geneve_bad_version',
  'geneve_bad_option_length',
  'geneve_bad_protocol',
  'encap_too_deep',
  'tcp_truncated',
  'tcp_bad_data_offset',
  'fragment_bad_length',
  'fragment_truncated',
  'fragment_too_big',
  'fragment_too_many',
  'fragment_overlap',
  'fragment_timeout',
  'fragment_memcap',
  'fragment_incomplete',
] as const;
export type Anomaly = (typeof ANOMALIES)[number];

/**
 * Well-formed frames not handed on by themselves, counted apart so they never look like errors:
 * not ours, or fragments whose bytes are handed on (or counted) with their datagram.
 * fragment_held: kept until its datagram is whole; fragment_duplicate: bytes already held;
 * fragment_discarded: its datagram was already given up (and counted under a fragment_* anomaly).
 * With decapsulation (tunnel.ts): not_tunnel: no VXLAN (UDP 4789) or GENEVE (UDP 6081) around it;
 * other_vni: its VNI is not one of --vni; geneve_control: a GENEVE control message (O bit), which
 * carries no mirrored traffic.
 */
export const SKIPS = ['not_ip', 'not_tcp', 'other_port', 'fragment_held', 'fragment_duplicate', 'fragment_discarded', 'not_tunnel', 'other_vni', 'geneve_control'] as const;
export type Skip = (typeof SKIPS)[number];

const anomalyIndex = new Map<string, number>(ANOMALIES.map((a, i) => [a, i]));
const skipIndex = new Map<string, number>(SKIPS.map((s, i) => [s, i]));

export class DecodeCounters {
  readonly anomalies = new Float64Array(ANOMALIES.length);
  readonly skips = new Float64Array(SKIPS.length);

  anomaly(name: Anomaly): number {
    return this.anomalies[anomalyIndex.get(name)!];
  }
  skip(name: Skip): number {
    return this.skips[skipIndex.get(name)!];
  }
}

// Indices resolved once so the hot path increments a constant slot.
export const A = Object.fromEntries(ANOMALIES.map((a, i) => [a, i])) as Record<Anomaly, number>;
export const S = Object.fromEntries(SKIPS.map((s, i) => [s, i])) as Record<Skip, number>;
