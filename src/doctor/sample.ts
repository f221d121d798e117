/**
 * A short AF_PACKET capture of the VXLAN datagrams that reach the underlying device, before
 * the kernel's vxlan driver drops those with a VNI no interface has (silently).
 */
import { buildTunnelFilter, buildUdpPortFilter, TUNNEL_PORTS } from '../capture/bpf.js';
import { PacketRing } from '../capture/ring.js';
import { ANOMALIES } from '../decode/anomalies.js';
import { Decoder } from '../decode/decoder.js';
import { FlowSample, type FlowSummary } from './flows.js';

export interface VxlanDatagram {
  vni: number;
  /** Bytes of the inner IP packet that the datagram carries. */
  innerBytes: number;
  /** Its length per the inner IP header; above innerBytes means the mirror cut it. */
  innerIpLength: number | null;
  /** Offset of the inner Ethernet frame from the outer frame's start. */
  inner: number;
}

export interface Sample {
  device: string;
  port: number;
  seconds: number;
  datagrams: number;
  /** Datagrams per VNI. */
  vnis: Map<number, number>;
  /** Datagrams without the VXLAN I flag, or too short to hold a VXLAN header. */
  notVxlan: number;
  /** Inner packets shorter than their IP header says (the mirror truncated them). */
  truncated: number;
  largestInnerIp: number;
  kernelDrops: number;
  /** The connections on the service port inside the datagrams. */
  flows: FlowSummary;
}

/** Parses an outer Ethernet/IPv4|IPv6/UDP/VXLAN frame; null when it is not one to `port`. */
export function parseVxlanFrame(b: Uint8Array, off: number, len: number, port: number): VxlanDatagram | null {
  const dv = new DataView(b.buffer, b.byteOffset + off, len);
  if (len < 14) return null;
  const type = dv.getUint16(12);
  let udp: number;
  if (type === 0x0800) {
    if (len < 34 || dv.getUint8(23) !== 17) return null;
    udp = 14 + (dv.getUint8(14) & 0x0f) * 4;
  } else if (type === 0x86dd) {
    if (len < 62 || dv.getUint8(20) !== 17) return null;
    udp = 54;
  } else return null;
  if (udp + 16 > len || dv.getUint16(udp + 2) !== port) return null;
  const vx = udp + 8;
  if ((dv.getUint8(vx) & 0x08) === 0) return { vni: -1, innerBytes: 0, innerIpLength: null, inner: 0 };
  const vni = (dv.getUint8(vx + 4) << 16) | (dv.getUint8(vx + 5) << 8) | dv.getUint8(vx + 6);
  const inner = vx + 8;
  const ip = inner + 14;
  const innerBytes = Math.max(0, len - ip);
  let innerIpLength: number | null = null;
  if (ip + 20 <= len) {
    const it = dv.getUint16(inner + 12);
    if (it === 0x0800) innerIpLength = dv.getUint16(ip + 2);
    else if (it === 0x86dd && ip + 40 <= len) innerIpLength = 40 + dv.getUint16(ip + 4);
  }
  return { vni, innerBytes, innerIpLength, inner };
}

/**
 * Captures for `seconds` on `device` (VXLAN to UDP `port`; `servicePort`: production's TCP port
 * inside); throws CaptureError if the ring cannot open.
 */
export async function sampleVxlan(device: string, port: number, seconds: number, servicePort = 80): Promise<Sample> {
  const flows = new FlowSample(servicePort);
  const s: Sample = { device, port, seconds, datagrams: 0, vnis: new Map(), notVxlan: 0, truncated: 0, largestInnerIp: 0, kernelDrops: 0, flows: flows.summary() };
  const ring = new PacketRing({ interface: device, port, ringMiB: 4, blockKiB: 128, filter: buildUdpPortFilter(port) });
  const timer = setTimeout(() => ring.stop(), seconds * 1000);
  try {
    await ring.run((buf, off, cap, wire) => {
      const d = parseVxlanFrame(buf, off, cap, port);
      if (!d) return;
      s.datagrams++;
      if (d.vni < 0) {
        s.notVxlan++;
        return;
      }
      s.vnis.set(d.vni, (s.vnis.get(d.vni) ?? 0) + 1);
      flows.note(buf, off + d.inner, cap - d.inner);
      // capLen < wireLen would be our own cut, not the mirror's; the ring keeps frames whole.
      if ((d.innerIpLength !== null && d.innerIpLength > d.innerBytes) || cap < wire) s.truncated++;
      if (d.innerIpLength !== null) s.largestInnerIp = Math.max(s.largestInnerIp, Math.min(d.innerIpLength, d.innerBytes));
    });
  } finally {
    clearTimeout(timer);
  }
  s.kernelDrops = ring.stats().kernelDrops;
  s.flows = flows.summary();
  return s;
}

/** What an --encap-interface device received: the tunnels the daemon would take apart itself. */
export interface TunnelSample {
  device: string;
  seconds: number;
  /** Frames that came through VXLAN (UDP 4789) or GENEVE (UDP 6081), per innermost VNI. */
  vnis: Map<number, number>;
  /** Datagrams to a tunnel port that did not decode (bad VXLAN/GENEVE/UDP header): the decoder's anomalies. */
  malformed: number;
  /** Inner segments shorter than their IP header says (the mirror cut them). */
  truncated: number;
  kernelDrops: number;
  flows: FlowSummary;
}

/** Segments are keyed by address words: any stable text will do for telling connections apart. */
function addr(words: Uint32Array, version: number): string {
  return version === 4 ? String(words[0]) : Array.from(words).join(':');
}

/**
 * Captures for `seconds` what reaches `device` on the tunnel ports and takes it apart with the
 * daemon's own Decoder, as --encap-interface would; throws CaptureError if the ring cannot open.
 */
export async function sampleTunnels(device: string, seconds: number, servicePort = 80): Promise<TunnelSample> {
  const flows = new FlowSample(servicePort);
  const decoder = new Decoder(servicePort, {}, { vnis: [] });
  let truncated = 0;
  const ring = new PacketRing({ interface: device, port: TUNNEL_PORTS[0], ringMiB: 4, blockKiB: 128, filter: buildTunnelFilter() });
  const timer = setTimeout(() => ring.stop(), seconds * 1000);
  try {
    await ring.run((buf, off, cap, wire) => {
      const p = decoder.decode(buf, off, cap, wire);
      if (p === null) return;
      if (p.payloadMissing > 0) truncated++;
      const payload = p.payloadOffset;
      flows.segment(addr(p.src, p.ipVersion), addr(p.dst, p.ipVersion), p.srcPort, p.dstPort, p.flags, p.buf, payload, payload + p.payloadLength);
    });
  } finally {
    clearTimeout(timer);
  }
  const anomalies = decoder.counters.anomalies;
  const malformed = ANOMALIES.reduce((n, name, i) => n + (/^(udp|vxlan|geneve|encap)_/.test(name) ? anomalies[i] : 0), 0);
  return { device, seconds, vnis: new Map(decoder.vnis.frames), malformed, truncated, kernelDrops: ring.stats().kernelDrops, flows: flows.summary() };
}
