import { S, DecodeCounters } from './anomalies.js';
import { decodeEthernet, ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from './ethernet.js';
import { decodeIpv4, IPPROTO_TCP } from './ipv4.js';
import { decodeIpv6 } from './ipv6.js';
import { Packet } from './packet.js';
import { decodeTcp } from './tcp.js';

/**
 * Runs the layers in order over one frame and fills the reused Packet. Returns the packet when
 * it is a TCP segment from or to `port`, else null (counted as an anomaly or a skip).
 */
export class Decoder {
  readonly counters = new DecodeCounters();
  private readonly packet = new Packet();
  constructor(private readonly port: number) {}

  decode(buf: Uint8Array, offset: number, capLen: number, wireLen: number): Packet | null {
    const p = this.packet;
    const c = this.counters;
    p.buf = buf;
    p.capEnd = offset + capLen;
    p.wireMissing = wireLen > capLen ? wireLen - capLen : 0;
    if (!decodeEthernet(p, offset, c)) return null;
    let proto: number;
    if (p.etherType === ETHERTYPE_IPV4) proto = decodeIpv4(p, c);
    else if (p.etherType === ETHERTYPE_IPV6) proto = decodeIpv6(p, c);
    else {
      c.skips[S.not_ip]++;
      return null;
    }
    if (proto < 0) return null;
    if (proto !== IPPROTO_TCP) {
      c.skips[S.not_tcp]++;
      return null;
    }
    if (!decodeTcp(p, c)) return null;
    if (p.dstPort !== this.port && p.srcPort !== this.port) {
      c.skips[S.other_port]++;
      return null;
    }
    return p;
  }
}
