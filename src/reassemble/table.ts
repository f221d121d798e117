import { TCP_FIN, TCP_RST, TCP_SYN, type Packet } from '../decode/packet.js';
import { Flow } from './flow.js';
import { seqAdd, seqDiff } from './seq.js';
import type { SinkFactory } from './stream.js';

/** Reassembly events, counted by name (see README: metrics). */
export const REASSEMBLY_EVENTS = [
  'segments',
  'in_order',
  'out_of_order',
  'retransmitted',
  'overlap_trimmed',
  'truncated_segments',
  'holes_skipped_timeout',
  'holes_skipped_flow_cap',
  'holes_skipped_memcap',
  'gap_bytes',
  'flows_created',
  'flows_midstream',
  'flows_closed_fin',
  'flows_closed_rst',
  'flows_expired',
  'flows_evicted',
  'flows_reused',
  'after_close',
  'out_of_window',
  'server_segments',
] as const;
export type ReassemblyEvent = (typeof REASSEMBLY_EVENTS)[number];
const E = Object.fromEntries(REASSEMBLY_EVENTS.map((e, i) => [e, i])) as Record<ReassemblyEvent, number>;

export interface TableOptions {
  /** The service port: segments to it are client-to-server. */
  port: number;
  /** Out-of-order bytes one flow may hold before its oldest hole is given up. */
  maxFlowBufferBytes: number;
  /** Out-of-order bytes all flows together may hold. */
  memcapBytes: number;
  maxFlows: number;
  /** A hole not filled within this time is given up (the mirror lost the segment). */
  holeTimeoutMs: number;
  idleTimeoutMs: number;
  /** Closed flows linger this long so late retransmissions are not taken for new connections. */
  closedLingerMs: number;
}

export const DEFAULT_TABLE_OPTIONS: Omit<TableOptions, 'port'> = {
  maxFlowBufferBytes: 4 * 1024 * 1024,
  memcapBytes: 128 * 1024 * 1024,
  maxFlows: 100_000,
  holeTimeoutMs: 2_000,
  idleTimeoutMs: 120_000,
  closedLingerMs: 10_000,
};

/** A segment more than this far ahead of what we expect is not believed. */
const MAX_WINDOW = 1 << 30;

function fmtIp(p: Packet, src: boolean): string {
  const a = src ? p.src : p.dst;
  if (p.ipVersion === 4) {
    const v = a[0];
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  }
  const parts: string[] = [];
  for (let i = 0; i < 4; i++) parts.push((a[i] >>> 16).toString(16), (a[i] & 0xffff).toString(16));
  // Compress the longest run of zero groups, per RFC 5952.
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (parts[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && parts[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return parts.join(':');
  return `${parts.slice(0, best).join(':')}::${parts.slice(best + bestLen).join(':')}`;
}

/**
 * All client-to-server flows to the service port. In-order payload goes straight from the
 * capture view to the flow's sink; only out-of-order segments are copied, under a per-flow and
 * a global cap. Works with one direction mirrored (no SYN-ACK or ACK ever seen) and picks up
 * connections whose SYN it never saw.
 */
export class FlowTable {
  readonly events = new Float64Array(REASSEMBLY_EVENTS.length);
  private readonly buckets = new Map<number, Flow>();
  private count = 0;
  private open = 0;
  private heldTotal = 0;
  private readonly opts: TableOptions;

  constructor(opts: Partial<TableOptions> & { port: number }, private readonly sinkFactory: SinkFactory) {
    this.opts = { ...DEFAULT_TABLE_OPTIONS, ...opts };
  }

  event(name: ReassemblyEvent): number {
    return this.events[E[name]];
  }
  /** Flows in the table, including closed ones kept for a while to absorb retransmissions. */
  get flowCount(): number {
    return this.count;
  }
  get openFlows(): number {
    return this.open;
  }
  get heldBytes(): number {
    return this.heldTotal;
  }
  /** Bytes held by the sinks (partial requests). Walks the table: call at scrape time only. */
  sinkBytes(): number {
    let n = 0;
    for (const head of this.buckets.values()) for (let f: Flow | null = head; f; f = f.next) if (!f.closed) n += f.sink.bufferedBytes;
    return n;
  }

  onPacket(p: Packet, now: number): void {
    const ev = this.events;
    ev[E.segments]++;
    let reverse = false;
    if (p.dstPort !== this.opts.port) {
      // Server to client: only its RST matters here (the connection is gone).
      ev[E.server_segments]++;
      if (!(p.flags & TCP_RST)) return;
      reverse = true;
    }
    const hash = this.hash(p, reverse);
    let f = this.find(p, hash, reverse);
    if (reverse) {
      if (f && !f.closed) this.close(f, now, E.flows_closed_rst);
      return;
    }
    const flags = p.flags;
    if (flags & TCP_SYN && !(flags & TCP_RST)) {
      if (f && f.synSeen && f.isn === p.seq) {
        ev[E.retransmitted]++;
        if (!f.closed) f.lastSeen = now;
        return;
      }
      if (f) {
        // Port reuse (or a SYN after a midstream pickup): the old connection is over.
        ev[E.flows_reused]++;
        if (!f.closed) this.close(f, now, E.flows_closed_fin);
        this.unlink(f);
      }
      f = this.create(p, hash, now, false);
      f.synSeen = true;
      f.isn = p.seq;
      f.nextSeq = seqAdd(p.seq, 1);
      if (p.payloadLength === 0 && p.payloadMissing === 0 && !(flags & TCP_FIN)) return;
      this.data(f, p, seqAdd(p.seq, 1), now);
      return;
    }
    if (!f) {
      // A bare ACK, keep-alive probe, RST or FIN of a connection we don't know: nothing to replay.
      if (flags & TCP_RST || (p.payloadLength === 0 && p.payloadMissing === 0)) return;
      f = this.create(p, hash, now, true);
      f.nextSeq = p.seq;
    } else if (f.closed) {
      if (p.payloadLength || p.payloadMissing) ev[E.after_close]++;
      return;
    }
    if (flags & TCP_RST) {
      this.close(f, now, E.flows_closed_rst);
      return;
    }
    this.data(f, p, p.seq, now);
  }

  /** Expire idle flows, give up holes that waited too long, forget closed flows. */
  sweep(now: number): void {
    const o = this.opts;
    for (const head of [...this.buckets.values()]) {
      for (let f: Flow | null = head; f; ) {
        const nextF: Flow | null = f.next;
        if (f.closed) {
          if (now - f.closedAt > o.closedLingerMs) this.unlink(f);
        } else if (now - f.lastSeen > o.idleTimeoutMs) {
          this.close(f, now, E.flows_expired);
          this.unlink(f);
        } else if ((f.held.length || f.finSeen) && now - f.holeSince > o.holeTimeoutMs) {
          this.skipHole(f, E.holes_skipped_timeout);
          this.drain(f, now);
          if (f.finSeen && !f.closed && f.held.length === 0 && seqDiff(f.finSeq, f.nextSeq) > 0) {
            // The bytes before the FIN never came.
            this.gap(f, seqDiff(f.finSeq, f.nextSeq));
            this.close(f, now, E.flows_closed_fin);
          }
        }
        f = nextF;
      }
    }
  }

  /** End every flow (shutdown, or end of a pcap file). */
  closeAll(now: number): void {
    for (const head of [...this.buckets.values()]) {
      for (let f: Flow | null = head; f; ) {
        const nextF: Flow | null = f.next;
        if (!f.closed) this.close(f, now, E.flows_expired);
        this.unlink(f);
        f = nextF;
      }
    }
  }

  private data(f: Flow, p: Packet, seq: number, now: number): void {
    const ev = this.events;
    f.lastSeen = now;
    let len = p.payloadLength;
    let off = p.payloadOffset;
    const missing = p.payloadMissing;
    if (missing) ev[E.truncated_segments]++;
    if (p.flags & TCP_FIN) {
      f.finSeen = true;
      f.finSeq = seqAdd(seq, len + missing);
      if (f.held.length === 0) f.holeSince = now;
    }
    let rel = seqDiff(seq, f.nextSeq);
    if (rel > MAX_WINDOW || rel < -MAX_WINDOW) {
      ev[E.out_of_window]++;
      return;
    }
    if (rel < 0) {
      if (rel + len + missing <= 0) {
        if (len > 0 || missing > 0) ev[E.retransmitted]++;
        this.maybeFinish(f, now);
        return;
      }
      // Overlap with bytes already delivered: the first copy wins.
      ev[E.overlap_trimmed]++;
      const cut = -rel;
      if (cut >= len) {
        // Only the uncaptured tail is new.
        this.gap(f, len + missing - cut);
        this.drain(f, now);
        return;
      }
      off += cut;
      len -= cut;
      rel = 0;
    }
    if (rel === 0) {
      if (len || missing) ev[E.in_order]++;
      if (len) {
        f.sink.push(p.buf, off, len);
        f.advance(len);
      }
      if (missing) this.gap(f, missing);
      this.drain(f, now);
      return;
    }
    // Ahead of a hole: copy and hold.
    if (len === 0 && missing === 0) {
      this.maybeFinish(f, now);
      return;
    }
    ev[E.out_of_order]++;
    const data = Buffer.allocUnsafe(len);
    data.set(p.buf.subarray(off, off + len));
    if (f.held.length === 0) f.holeSince = now;
    while (f.held.length && f.heldBytes + len > this.opts.maxFlowBufferBytes) {
      this.skipHole(f, E.holes_skipped_flow_cap);
      this.drain(f, now);
      if (f.closed) return;
      rel = seqDiff(seq, f.nextSeq);
      if (rel <= 0) break;
    }
    if (this.heldTotal + len > this.opts.memcapBytes) this.relieveMemcap(f, len, now);
    if (f.closed) return;
    rel = seqDiff(seq, f.nextSeq);
    if (rel <= 0) {
      // Skipping holes made this segment current: deliver from the copy.
      const cut = -rel;
      if (cut < len) {
        f.sink.push(data, cut, len - cut);
        f.advance(len - cut);
        if (missing) this.gap(f, missing);
      } else if (cut < len + missing) {
        this.gap(f, len + missing - cut);
      }
      this.drain(f, now);
      return;
    }
    if (f.held.length === 0) f.holeSince = now;
    if (f.hold({ seq, data, missing })) this.heldTotal += len;
    else ev[E.retransmitted]++;
  }

  /** Deliver held segments that have become contiguous. */
  private drain(f: Flow, now: number): void {
    const held = f.held;
    while (held.length && !f.closed) {
      const seg = held[0];
      const rel = seqDiff(seg.seq, f.nextSeq);
      if (rel > 0) break;
      held.shift();
      f.heldBytes -= seg.data.length;
      this.heldTotal -= seg.data.length;
      const len = seg.data.length;
      const cut = -rel;
      if (cut > 0) this.events[E.overlap_trimmed]++;
      if (cut < len) {
        f.sink.push(seg.data, cut, len - cut);
        f.advance(len - cut);
        if (seg.missing) this.gap(f, seg.missing);
      } else if (cut < len + seg.missing) {
        this.gap(f, len + seg.missing - cut);
      }
      if (held.length) f.holeSince = now;
    }
    this.maybeFinish(f, now);
  }

  private maybeFinish(f: Flow, now: number): void {
    if (f.finSeen && !f.closed && f.held.length === 0 && seqDiff(f.finSeq, f.nextSeq) <= 0) {
      this.close(f, now, E.flows_closed_fin);
    }
  }

  /** Give up the hole in front of the first held segment. */
  private skipHole(f: Flow, reason: number): void {
    const size = f.holeSize();
    if (size <= 0) return;
    this.events[reason]++;
    this.gap(f, size);
  }

  private gap(f: Flow, bytes: number): void {
    if (bytes <= 0) return;
    this.events[E.gap_bytes] += bytes;
    f.sink.gap(bytes);
    f.advance(bytes);
  }

  /** Over the global cap: give up holes in the flows holding the most, starting with the largest. */
  private relieveMemcap(current: Flow, need: number, now: number): void {
    while (this.heldTotal + need > this.opts.memcapBytes) {
      let biggest: Flow | null = null;
      for (const head of this.buckets.values())
        for (let f: Flow | null = head; f; f = f.next) if (f.heldBytes > 0 && (!biggest || f.heldBytes > biggest.heldBytes)) biggest = f;
      if (!biggest) return;
      while (biggest.held.length) {
        this.skipHole(biggest, E.holes_skipped_memcap);
        this.drain(biggest, now);
      }
      if (biggest === current) return;
    }
  }

  private close(f: Flow, now: number, reason: number): void {
    this.events[reason]++;
    this.open--;
    f.closed = true;
    f.closedAt = now;
    this.heldTotal -= f.heldBytes;
    f.held = [];
    f.heldBytes = 0;
    f.sink.end();
  }

  private create(p: Packet, hash: number, now: number, midstream: boolean): Flow {
    if (this.count >= this.opts.maxFlows) this.evictOldest(now);
    const f = new Flow();
    f.ipVersion = p.ipVersion;
    f.s0 = p.src[0]; f.s1 = p.src[1]; f.s2 = p.src[2]; f.s3 = p.src[3];
    f.d0 = p.dst[0]; f.d1 = p.dst[1]; f.d2 = p.dst[2]; f.d3 = p.dst[3];
    f.sport = p.srcPort;
    f.dport = p.dstPort;
    f.hash = hash;
    f.lastSeen = now;
    f.info = { clientAddr: fmtIp(p, true), clientPort: p.srcPort, serverAddr: fmtIp(p, false), serverPort: p.dstPort, ipVersion: p.ipVersion };
    f.sink = this.sinkFactory(f.info, midstream);
    f.next = this.buckets.get(hash) ?? null;
    this.buckets.set(hash, f);
    this.count++;
    this.open++;
    this.events[E.flows_created]++;
    if (midstream) this.events[E.flows_midstream]++;
    return f;
  }

  private evictOldest(now: number): void {
    let oldest: Flow | null = null;
    for (const head of this.buckets.values())
      for (let f: Flow | null = head; f; f = f.next) if (!oldest || (f.closed ? 0 : 1) < (oldest.closed ? 0 : 1) || f.lastSeen < oldest.lastSeen) oldest = f;
    if (!oldest) return;
    if (!oldest.closed) this.close(oldest, now, E.flows_evicted);
    this.unlink(oldest);
  }

  private unlink(f: Flow): void {
    const head = this.buckets.get(f.hash);
    if (!head) return;
    if (head === f) {
      if (f.next) this.buckets.set(f.hash, f.next);
      else this.buckets.delete(f.hash);
    } else {
      let prev = head;
      while (prev.next && prev.next !== f) prev = prev.next;
      if (prev.next !== f) return;
      prev.next = f.next;
    }
    f.next = null;
    this.count--;
  }

  /** 30-bit hash (a small integer, so Map lookups don't box) of the client-to-server key. */
  private hash(p: Packet, reverse: boolean): number {
    const a = reverse ? p.dst : p.src;
    const b = reverse ? p.src : p.dst;
    const sp = reverse ? p.dstPort : p.srcPort;
    const dp = reverse ? p.srcPort : p.dstPort;
    let h = 0x811c9dc5;
    h = Math.imul(h ^ a[0], 0x01000193);
    h = Math.imul(h ^ a[1], 0x01000193);
    h = Math.imul(h ^ a[2], 0x01000193);
    h = Math.imul(h ^ a[3], 0x01000193);
    h = Math.imul(h ^ b[0], 0x01000193);
    h = Math.imul(h ^ b[1], 0x01000193);
    h = Math.imul(h ^ b[2], 0x01000193);
    h = Math.imul(h ^ b[3], 0x01000193);
    h = Math.imul(h ^ ((sp << 16) | dp), 0x01000193);
    return (h ^ (h >>> 15)) & 0x3fffffff;
  }

  private find(p: Packet, hash: number, reverse: boolean): Flow | null {
    const a = reverse ? p.dst : p.src;
    const b = reverse ? p.src : p.dst;
    const sp = reverse ? p.dstPort : p.srcPort;
    const dp = reverse ? p.srcPort : p.dstPort;
    for (let f = this.buckets.get(hash) ?? null; f; f = f.next) {
      if (f.sport === sp && f.dport === dp && f.s0 === a[0] && f.d0 === b[0] && f.s1 === a[1] && f.s2 === a[2] && f.s3 === a[3] && f.d1 === b[1] && f.d2 === b[2] && f.d3 === b[3] && f.ipVersion === p.ipVersion) return f;
    }
    return null;
  }
}
