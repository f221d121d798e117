import type { Packet } from '../decode/packet.js';

/**
 * The text of a packet's source or destination address, as the server's own stack would print
 * the peer (X-Forwarded-For carries it): dotted IPv4; IPv6 per RFC 5952 (lower case, the first
 * longest run of two or more zero groups as "::"), with IPv4-mapped (::ffff:0:0/96) and
 * IPv4-compatible (::/96) addresses in mixed notation (§5), as inet_ntop writes them.
 */
export function formatAddress(p: Packet, src: boolean): string {
  const a = src ? p.src : p.dst;
  if (p.ipVersion === 4) return dotted(a[0]);
  const groups: number[] = [];
  for (let i = 0; i < 4; i++) groups.push(a[i] >>> 16, a[i] & 0xffff);
  if (a[0] === 0 && a[1] === 0) {
    if (a[2] === 0xffff) return `::ffff:${dotted(a[3])}`;
    if (a[2] === 0 && groups[6] !== 0) return `::${dotted(a[3])}`;
  }
  return compressed(groups);
}

function dotted(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

function compressed(groups: number[]): string {
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}
