/**
 * What the sampled connections carry, from the mirrored (inner) packets: does the service port
 * carry TLS, and does this adapter see both directions of each connection? Only headers and the
 * first payload bytes of each connection are read; the number of connections kept is capped.
 */
import { sniffTls } from '../http/tls.js';

const MAX_CONNECTIONS = 65_536;
const MAX_OTHER_PORTS = 64;
const TCP_SYN = 0x02;

interface Conn {
  /** Client-to-server packets seen (requests), server-to-client (answers). */
  up: boolean;
  down: boolean;
  synSeen: boolean;
  kind: 'tls' | 'http' | 'other' | null;
}

export interface FlowSummary {
  servicePort: number;
  connections: number;
  /** Connections whose first client bytes were judged: TLS, HTTP-looking, neither. */
  tls: number;
  http: number;
  other: number;
  /** Connections seen in one direction only: requests without answers, answers without requests. */
  upOnly: number;
  downOnly: number;
  /** TCP segments on other ports (the lower port of each), most frequent first. */
  otherPorts: Array<[number, number]>;
}

/** Connections on the service port, from inner Ethernet frames. */
export class FlowSample {
  private readonly conns = new Map<string, Conn>();
  private readonly otherPorts = new Map<number, number>();

  constructor(readonly servicePort: number) {}

  /** One inner Ethernet frame `b[off..off+len)` (what a VXLAN datagram carries). */
  note(b: Uint8Array, off: number, len: number): void {
    if (len < 14) return;
    const type = (b[off + 12] << 8) | b[off + 13];
    const ip = off + 14;
    const end = off + len;
    let tcp: number;
    let ipEnd: number;
    let src: string;
    let dst: string;
    if (type === 0x0800 && ip + 20 <= end && b[ip + 9] === 6) {
      if (((b[ip + 6] & 0x1f) | b[ip + 7]) !== 0) return; // a later fragment: no TCP header
      tcp = ip + (b[ip] & 0x0f) * 4;
      ipEnd = Math.min(end, ip + ((b[ip + 2] << 8) | b[ip + 3]));
      src = Array.from(b.subarray(ip + 12, ip + 16)).join('.');
      dst = Array.from(b.subarray(ip + 16, ip + 20)).join('.');
    } else if (type === 0x86dd && ip + 40 <= end && b[ip + 6] === 6) {
      tcp = ip + 40;
      ipEnd = Math.min(end, ip + 40 + ((b[ip + 4] << 8) | b[ip + 5]));
      src = Buffer.from(b.subarray(ip + 8, ip + 24)).toString('hex');
      dst = Buffer.from(b.subarray(ip + 24, ip + 40)).toString('hex');
    } else return;
    if (tcp + 20 > ipEnd) return;
    const payload = tcp + (b[tcp + 12] >> 4) * 4;
    this.segment(src, dst, (b[tcp] << 8) | b[tcp + 1], (b[tcp + 2] << 8) | b[tcp + 3], b[tcp + 13], b, payload, ipEnd);
  }

  /**
   * One TCP segment another decoder took apart (with --encap-interface the daemon's own Decoder
   * takes the tunnels off): addresses in any stable text form, payload `b[payload..end)`.
   */
  segment(src: string, dst: string, sport: number, dport: number, flags: number, b: Uint8Array, payload: number, end: number): void {
    const toServer = dport === this.servicePort;
    if (!toServer && sport !== this.servicePort) {
      this.notePort(Math.min(sport, dport));
      return;
    }
    const key = toServer ? `${src} ${sport} ${dst}` : `${dst} ${dport} ${src}`;
    let c = this.conns.get(key);
    if (!c) {
      if (this.conns.size >= MAX_CONNECTIONS) return;
      c = { up: false, down: false, synSeen: false, kind: null };
      this.conns.set(key, c);
    }
    if (!toServer) {
      c.down = true;
      return;
    }
    c.up = true;
    if (flags & TCP_SYN) c.synSeen = true;
    if (c.kind === null && payload < end) c.kind = judgeFirstBytes(b, payload, end - payload, !c.synSeen);
  }

  private notePort(port: number): void {
    const n = this.otherPorts.get(port);
    if (n !== undefined) this.otherPorts.set(port, n + 1);
    else if (this.otherPorts.size < MAX_OTHER_PORTS) this.otherPorts.set(port, 1);
  }

  summary(): FlowSummary {
    const s: FlowSummary = { servicePort: this.servicePort, connections: this.conns.size, tls: 0, http: 0, other: 0, upOnly: 0, downOnly: 0, otherPorts: [] };
    for (const c of this.conns.values()) {
      if (c.kind !== null) s[c.kind]++;
      if (c.up && !c.down) s.upOnly++;
      if (c.down && !c.up) s.downOnly++;
    }
    s.otherPorts = [...this.otherPorts.entries()].sort((a, b) => b[1] - a[1]);
    return s;
  }
}

/** A connection's first client bytes: a TLS record, the start of an HTTP request line, or neither. */
function judgeFirstBytes(b: Uint8Array, off: number, len: number, midstream: boolean): 'tls' | 'http' | 'other' | null {
  const v = sniffTls(b, off, len, midstream);
  if (v === 'tls') return 'tls';
  if (v === 'need_more') return null;
  const c = b[off];
  return c >= 65 && c <= 90 ? 'http' : midstream ? null : 'other';
}
