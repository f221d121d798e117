import { TCP_FIN, TCP_RST, TCP_SYN, type Packet } from '../decode/packet.js';
import { formatAddress } from './addr.js';
import { Flow } from './flow.js';
import { peerSegment } from './peer.js';
import { judgeReset, type SideView } from './reset.js';
import { seqAdd, seqDiff } from './seq.js';
import { ENDED_SINK, type GapCause, type SinkFactory } from './stream.js';
import { Tombs } from './tombs.js';

/** Reassembly events, counted by name (see README: metrics). */
export const REASSEMBLY_EVENTS = [
  'segments',
  'in_order',
  'out_of_order',
  'retransmitted',
  'overlap_trimmed',
  'overlap_conflict',
  'overlap_unverified',
  'truncated_segments',
  'holes_skipped_timeout',
  'holes_skipped_kernel_drop',
  'holes_skipped_flow_cap',
  'holes_skipped_memcap',
  'gap_bytes',
  'flows_created',
  'flows_midstream',
  'flows_closed_fin',
  'flows_closed_rst',
  'rst_ignored_seq',
  'rst_ignored_signed',
  'rst_ignored_timestamp',
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
  /**
   * Delivered bytes of the message in progress kept per flow (at most this many, the most recent)
   * to check overlapping retransmissions against. 0 turns the check off.
   */
  overlapCheckBytes: number;
  /**
   * Which direction this table reassembles: requests (segments to `port`, the default) or, for
   * shadow testing, responses (segments from `port`). FlowInfo keeps client/server meaning either way.
   */
  direction?: 'to_server' | 'to_client';
}

export const DEFAULT_TABLE_OPTIONS: Omit<TableOptions, 'port'> = {
  maxFlowBufferBytes: 4 * 1024 * 1024,
  memcapBytes: 128 * 1024 * 1024,
  maxFlows: 100_000,
  holeTimeoutMs: 2_000,
  idleTimeoutMs: 120_000,
  closedLingerMs: 10_000,
  overlapCheckBytes: 8 * 1024,
};

/** A segment more than this far ahead of what we expect is not believed. */
const MAX_WINDOW = 1 << 30;

/**
 * All client-to-server flows to the service port. In-order payload goes straight from the
 * capture view to the flow's sink; only out-of-order segments are copied, under a per-flow and
 * a global cap. Works with one direction mirrored (no SYN-ACK or ACK ever seen) and picks up
 * connections whose SYN it never saw.
 *
 * Overlaps: the first copy of a byte is the one delivered, but when a later copy carries
 * different bytes we cannot know which one the server kept (its OS decides, and a copy with a bad
 * checksum may never have reached it: AWS mirrors unchecked checksums). The sink is then told to
 * taint the message those bytes belong to, so it is not replayed. Checked: overlaps with held
 * out-of-order segments (always), and retransmissions against the last `overlapCheckBytes` bytes
 * delivered of the message in progress. Older bytes of that message are not kept: such an overlap
 * is counted as `overlap_unverified`. Bytes of finished messages are not kept either: a copy that
 * completes a message before any other copy arrives is replayed (first copy wins, as on the
 * server when that copy reached it); a differing later copy can no longer be acted upon.
 *
 * Resets: the mirror also sees segments their receiver drops, so a reset ends a flow only when
 * its receiver would act on it (reset.ts); one it would ignore is counted (`rst_ignored_*`) and
 * the flow goes on. When the capture carries the server-to-client direction, it is followed
 * (peer.ts) to judge the server's resets and to show the sink the server's in-order bytes.
 */
export class FlowTable {
  readonly events = new Float64Array(REASSEMBLY_EVENTS.length);
  private readonly buckets = new Map<number, Flow>();
  /** Closed flows, lingering (closedLingerMs) to recognise late copies. */
  private readonly tombs = new Tombs();
  private count = 0;
  private open = 0;
  private heldTotal = 0;
  /** When the capture last reported kernel drops (ms), see captureLoss. */
  private lossAt = -Infinity;
  private readonly opts: TableOptions;
  /** Responses table: the flow's sender is the server (its port is the source port). */
  private readonly toClient: boolean;

  constructor(opts: Partial<TableOptions> & { port: number }, private readonly sinkFactory: SinkFactory) {
    this.opts = { ...DEFAULT_TABLE_OPTIONS, ...opts };
    this.toClient = this.opts.direction === 'to_client';
  }

  event(name: ReassemblyEvent): number {
    return this.events[E[name]];
  }
  /** Flows in the table, including closed ones kept for a while to absorb retransmissions. */
  get flowCount(): number {
    return this.count + this.tombs.size;
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
    if ((this.toClient ? p.srcPort : p.dstPort) !== this.opts.port) {
      ev[E.server_segments]++;
      this.fromPeer(p, now);
      return;
    }
    const hash = this.hash(p, false);
    let f = this.find(p, hash, false);
    const flags = p.flags;
    if (flags & TCP_SYN && !(flags & TCP_RST)) {
      this.syn(f, p, hash, now);
      return;
    }
    if (!f) {
      // A bare ACK, keep-alive probe, RST or FIN of a connection we don't know: nothing to replay.
      if (flags & TCP_RST || (p.payloadLength === 0 && p.payloadMissing === 0)) return;
      if (this.tombs.size && this.tombs.find(p, hash) >= 0) {
        ev[E.after_close]++;
        return;
      }
      f = this.create(p, hash, now, true);
      f.nextSeq = p.seq;
      f.own.signed = p.signed;
    }
    if (flags & TCP_RST) {
      this.reset(f, p, f.own, f.nextSeq, f.maxEnd(), now);
      return;
    }
    this.data(f, p, p.seq, now);
  }

  /**
   * The capture source reported kernel drops at `now` (same clock as onPacket). A hole later given
   * up as lost is blamed on them (gap cause 'kernel_drop', event holes_skipped_kernel_drop) when
   * the last report came at most holeTimeoutMs before the hole was noticed, or since: drops are
   * reported after the fact, and the missing segment was due a little before the hole showed.
   */
  captureLoss(now: number): void {
    if (now > this.lossAt) this.lossAt = now;
  }

  private syn(f: Flow | null, p: Packet, hash: number, now: number): void {
    // The same ISN again is a retransmission, unless a reset ended that connection: then the
    // client (or a tool replaying it) is opening a new one.
    const t = f || !this.tombs.size ? -1 : this.tombs.find(p, hash);
    if (f ? f.synSeen && f.isn === p.seq && !f.closedByRst : t >= 0 && this.tombs.sameSyn(t, p.seq)) {
      this.events[E.retransmitted]++;
      if (f) f.lastSeen = now;
      return;
    }
    if (f || t >= 0) {
      // Port reuse (or a SYN after a midstream pickup): the old connection is over.
      this.events[E.flows_reused]++;
      if (f) this.close(f, now, E.flows_closed_fin, false);
      else this.tombs.remove(t);
    }
    f = this.create(p, hash, now, false);
    f.synSeen = true;
    f.isn = p.seq;
    f.nextSeq = seqAdd(p.seq, 1);
    f.own.signed = p.signed;
    if (p.payloadLength === 0 && p.payloadMissing === 0 && !(p.flags & TCP_FIN)) return;
    this.data(f, p, f.nextSeq, now);
  }

  /**
   * A segment from the other side: its resets end the flow (when its receiver would accept them),
   * the rest is followed for that judgement and for the sink's `peer`.
   */
  private fromPeer(p: Packet, now: number): void {
    // A bare ACK moves nothing we follow (payload, SYN, FIN): spare it the flow lookup.
    if (!(p.flags & (TCP_SYN | TCP_FIN | TCP_RST)) && p.payloadLength === 0 && p.payloadMissing === 0) return;
    const f = this.find(p, this.hash(p, true), true);
    if (!f || f.closed) return;
    if (p.flags & TCP_RST) {
      const v = f.peer;
      this.reset(f, p, v, v === null ? 0 : v.next, v === null ? 0 : v.maxEnd, now);
      return;
    }
    f.lastSeen = now;
    peerSegment(f, p);
  }

  /** A reset from `sender` (null: that side was never seen, so it cannot be judged: accepted). */
  private reset(f: Flow, p: Packet, sender: SideView | null, next: number, maxEnd: number, now: number): void {
    const ignored = sender === null ? null : judgeReset(p, sender, next, maxEnd);
    if (ignored !== null) {
      this.events[E[ignored]]++;
      return;
    }
    f.closedByRst = true;
    this.close(f, now, E.flows_closed_rst);
  }

  /** Expire idle flows, give up holes that waited too long, forget closed flows. */
  sweep(now: number): void {
    const o = this.opts;
    this.tombs.expire(now, o.closedLingerMs);
    for (const head of [...this.buckets.values()]) {
      for (let f: Flow | null = head; f; ) {
        const nextF: Flow | null = f.next;
        if (f.closed) {
          // Closed during this sweep (a hole given up before its FIN): already out of the table.
        } else if (now - f.lastSeen > o.idleTimeoutMs) {
          this.end(f, now, false);
        } else if ((f.held.length || f.finSeen) && now - f.holeSince > o.holeTimeoutMs) {
          this.giveUpHole(f, now);
        } else if (!f.stallSignalled && f.held.length === 0 && now - f.lastData > o.holeTimeoutMs) {
          // E.g. an Expect: 100-continue request whose body never came.
          f.stallSignalled = true;
          f.sink.stalled();
        }
        f = nextF;
      }
    }
  }

  /** A hole waited the hole timeout: the mirror lost the segment (or the kernel dropped its frame). */
  private giveUpHole(f: Flow, now: number): void {
    const kernel = this.lossAt >= f.holeSince - this.opts.holeTimeoutMs;
    const reason = kernel ? E.holes_skipped_kernel_drop : E.holes_skipped_timeout;
    const cause: GapCause = kernel ? 'kernel_drop' : 'lost';
    this.skipHole(f, reason, cause);
    this.drain(f, now);
    if (f.finSeen && !f.closed && f.held.length === 0 && seqDiff(f.finSeq, f.nextSeq) > 0) {
      // The bytes before the FIN never came.
      this.events[reason]++;
      this.gap(f, seqDiff(f.finSeq, f.nextSeq), cause);
      this.close(f, now, E.flows_closed_fin);
    }
  }

  /**
   * The flow ends with no more segments to come (idle, shutdown, end of a pcap): its holes will
   * never fill, so give them up first; what lies behind them is parsed and what is lost counted.
   */
  private end(f: Flow, now: number, linger: boolean): void {
    while (!f.closed && (f.held.length || (f.finSeen && seqDiff(f.finSeq, f.nextSeq) > 0))) this.giveUpHole(f, now);
    if (!f.closed) this.close(f, now, E.flows_expired, linger);
  }

  /** End every flow (shutdown, or end of a pcap file). */
  closeAll(now: number): void {
    for (const head of [...this.buckets.values()]) {
      for (let f: Flow | null = head; f; ) {
        const nextF: Flow | null = f.next;
        if (!f.closed) this.end(f, now, false);
        f = nextF;
      }
    }
    this.tombs.clear();
  }

  private data(f: Flow, p: Packet, seq: number, now: number): void {
    const ev = this.events;
    f.lastSeen = now;
    let len = p.payloadLength;
    let off = p.payloadOffset;
    const missing = p.payloadMissing;
    const quietFor = now - f.lastData;
    if (len || missing) {
      f.lastData = now;
      f.stallSignalled = false;
    }
    if (missing) ev[E.truncated_segments]++;
    if (p.flags & TCP_FIN) {
      f.finSeen = true;
      f.finSeq = seqAdd(seq, len + missing);
      if (f.held.length === 0) f.holeSince = now;
    }
    const rel = seqDiff(seq, f.nextSeq);
    if (rel > MAX_WINDOW || rel < -MAX_WINDOW) {
      ev[E.out_of_window]++;
      return;
    }
    if (p.hasTimestamp) f.own.noteTimestamp(p);
    if (rel > 0) return this.ahead(f, p, seq, now);
    if (rel < 0) {
      const cut = this.behind(f, p, seq, rel, quietFor, now);
      if (cut < 0) return;
      off += cut;
      len -= cut;
    }
    // In order (or made so by trimming what was already delivered).
    if (len || missing) ev[E.in_order]++;
    // Bytes that also sit in held copies (which arrived first) must agree with them.
    if (len && f.held.length) this.checkHeld(f, f.nextSeq, Buffer.from(p.buf.buffer, p.buf.byteOffset + off, len));
    if (len) this.deliver(f, p.buf, off, len);
    if (missing) this.gap(f, missing, 'truncated');
    this.drain(f, now);
  }

  /**
   * A segment that starts before nextSeq (rel < 0): a retransmission, or new bytes after an
   * overlap. Returns how many leading bytes were delivered before (the rest is in order now), or
   * -1 when nothing of it is left to deliver.
   */
  private behind(f: Flow, p: Packet, seq: number, rel: number, quietFor: number, now: number): number {
    const len = p.payloadLength;
    const missing = p.payloadMissing;
    // A keep-alive probe (one garbage byte just before nextSeq, sent only on a quiet
    // connection) is not a conflict; the same shape on a busy connection is checked.
    const probe = rel === -1 && len <= 1 && missing === 0 && quietFor >= this.opts.holeTimeoutMs;
    if (!probe && len > 0) this.checkDelivered(f, seq, p.buf, p.payloadOffset, len);
    if (rel + len + missing <= 0) {
      if (len > 0 || missing > 0) this.events[E.retransmitted]++;
      this.maybeFinish(f, now);
      return -1;
    }
    // Overlap with bytes already delivered: the first copy wins.
    this.events[E.overlap_trimmed]++;
    const cut = -rel;
    if (cut >= len) {
      // Only the uncaptured tail is new.
      this.gap(f, len + missing - cut, 'truncated');
      this.drain(f, now);
      return -1;
    }
    return cut;
  }

  /** A segment ahead of a hole: copied and held, after making room under the flow cap and memcap. */
  private ahead(f: Flow, p: Packet, seq: number, now: number): void {
    const len = p.payloadLength;
    const missing = p.payloadMissing;
    if (len === 0 && missing === 0) {
      this.maybeFinish(f, now);
      return;
    }
    this.events[E.out_of_order]++;
    const data = Buffer.allocUnsafeSlow(len);
    data.set(p.buf.subarray(p.payloadOffset, p.payloadOffset + len));
    if (f.held.length === 0) f.holeSince = now;
    while (f.held.length && f.heldBytes + len > this.opts.maxFlowBufferBytes) {
      this.skipHole(f, E.holes_skipped_flow_cap, 'flow_cap');
      this.drain(f, now);
      if (f.closed) return;
      if (seqDiff(seq, f.nextSeq) <= 0) break;
    }
    if (this.heldTotal + len > this.opts.memcapBytes) this.relieveMemcap(f, len, now);
    if (f.closed) return;
    const rel = seqDiff(seq, f.nextSeq);
    if (rel <= 0) return this.nowCurrent(f, seq, data, -rel, missing, now);
    if (f.held.length === 0) f.holeSince = now;
    if (f.held.length) this.checkHeld(f, seq, data);
    if (f.hold({ seq, data, missing })) {
      this.heldTotal += len;
      if (len > f.maxHeldLen) f.maxHeldLen = len;
    } else this.events[E.retransmitted]++;
  }

  /** Skipping holes made a segment being held current: deliver from its copy, `cut` bytes in. */
  private nowCurrent(f: Flow, seq: number, data: Buffer, cut: number, missing: number, now: number): void {
    const len = data.length;
    if (cut > 0 && len > 0) this.checkDelivered(f, seq, data, 0, len);
    if (cut < len && f.held.length) this.checkHeld(f, f.nextSeq, data.subarray(cut));
    if (cut < len) {
      this.deliver(f, data, cut, len - cut);
      if (missing) this.gap(f, missing, 'truncated');
    } else if (cut < len + missing) {
      this.gap(f, len + missing - cut, 'truncated');
    }
    this.drain(f, now);
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
      if (cut > 0) {
        this.events[E.overlap_trimmed]++;
        if (len > 0) this.checkDelivered(f, seg.seq, seg.data, 0, len);
      }
      if (cut < len) {
        this.deliver(f, seg.data, cut, len - cut);
        if (seg.missing) this.gap(f, seg.missing, 'truncated');
      } else if (cut < len + seg.missing) {
        this.gap(f, len + seg.missing - cut, 'truncated');
      }
      if (held.length) f.holeSince = now;
    }
    if (held.length === 0) f.maxHeldLen = 0;
    this.maybeFinish(f, now);
  }

  /**
   * In-order bytes to the sink. Ranges whose held copies disagreed are announced (taint) just
   * before their first byte, so the sink can drop the message they start or continue.
   */
  private deliver(f: Flow, buf: Uint8Array, off: number, len: number): void {
    const c = f.conflicts;
    if (c !== null) {
      for (let i = 0; i < c.length; ) {
        const s = seqDiff(c[i].start, f.nextSeq);
        if (seqDiff(c[i].end, f.nextSeq) <= 0) { c.splice(i, 1); continue; }
        if (s >= len) { i++; continue; }
        if (s > 0) {
          this.pushNow(f, buf, off, s);
          off += s;
          len -= s;
        }
        c.splice(i, 1);
        this.taint(f);
        i = 0;
      }
      if (c.length === 0) f.conflicts = null;
    }
    if (len > 0) this.pushNow(f, buf, off, len);
  }

  private pushNow(f: Flow, buf: Uint8Array, off: number, len: number): void {
    f.sink.push(buf, off, len);
    f.advance(len);
    // Keep the tail of the message in progress for checkDelivered; between messages keep nothing.
    const max = this.opts.overlapCheckBytes;
    const keep = Math.min(max, f.sink.pendingBytes);
    if (keep <= 0) {
      this.forget(f);
      return;
    }
    // Sized to what is kept (a header section is usually well under the window), grown on
    // demand up to twice the window: 10,000 flows mid-request must not cost 16 KiB each.
    if (f.recent === null || (f.recent.length < 2 * max && f.recent.length < 2 * keep)) {
      const size = Math.min(2 * max, Math.max(512, 2 ** Math.ceil(Math.log2(2 * keep))));
      const grown = Buffer.allocUnsafeSlow(size);
      if (f.recent !== null && f.recentLen > 0) {
        f.recent.copy(grown, 0, f.recentEnd - f.recentLen, f.recentEnd);
        f.recentEnd = f.recentLen;
      } else {
        f.recentEnd = 0;
        f.recentLen = 0;
      }
      f.recent = grown;
    }
    const r = f.recent;
    if (len >= keep) {
      r.set(buf.subarray(off + len - keep, off + len), 0);
      f.recentEnd = keep;
      f.recentLen = keep;
      return;
    }
    const prev = Math.min(f.recentLen, keep - len);
    if (f.recentEnd + len > r.length) {
      r.copyWithin(0, f.recentEnd - prev, f.recentEnd);
      f.recentEnd = prev;
    }
    r.set(buf.subarray(off, off + len), f.recentEnd);
    f.recentEnd += len;
    f.recentLen = prev + len;
  }

  private forget(f: Flow): void {
    f.recent = null;
    f.recentEnd = 0;
    f.recentLen = 0;
  }

  private taint(f: Flow): void {
    f.sink.taint('overlap_conflict');
    this.forget(f);
  }

  /** A copy of bytes before nextSeq arrived (seq is behind nextSeq): compare what we still have. */
  private checkDelivered(f: Flow, seq: number, buf: Uint8Array, off: number, len: number): void {
    const rel = seqDiff(seq, f.nextSeq);
    // Segment bytes [0, ovEnd) lie before nextSeq; byte i is at stream position rel + i.
    const ovEnd = Math.min(len, -rel);
    if (ovEnd <= 0) return;
    const winFrom = Math.max(0, -f.recentLen - rel);
    if (winFrom < ovEnd) {
      const base = f.recentEnd + rel;
      const mine = f.recent!.subarray(base + winFrom, base + ovEnd);
      if (!mine.equals(buf.subarray(off + winFrom, off + ovEnd))) {
        this.events[E.overlap_conflict]++;
        this.taint(f);
        return;
      }
    }
    const pendFrom = Math.max(0, -f.sink.pendingBytes - rel);
    if (pendFrom < Math.min(winFrom, ovEnd)) this.events[E.overlap_unverified]++;
  }

  /** A new out-of-order segment: record where it disagrees with held copies of the same bytes. */
  private checkHeld(f: Flow, seq: number, data: Buffer): void {
    const h = f.held;
    const len = data.length;
    let lo = 0;
    let hi = h.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (seqDiff(h[mid].seq, seq) < 0) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < h.length; i++) {
      const d = seqDiff(h[i].seq, seq);
      if (d >= len) break;
      this.compareHeld(f, seq, data, h[i], d);
    }
    for (let i = lo - 1; i >= 0; i--) {
      const d = seqDiff(h[i].seq, seq);
      if (-d >= f.maxHeldLen) break;
      this.compareHeld(f, seq, data, h[i], d);
    }
  }

  /** `other` starts `d` bytes after `seq` (d may be negative). */
  private compareHeld(f: Flow, seq: number, data: Buffer, other: { data: Buffer }, d: number): void {
    const a = Math.max(0, d);
    const b = Math.min(data.length, d + other.data.length);
    if (a >= b) return;
    if (data.subarray(a, b).equals(other.data.subarray(a - d, b - d))) return;
    this.events[E.overlap_conflict]++;
    (f.conflicts ??= []).push({ start: seqAdd(seq, a), end: seqAdd(seq, b) });
  }

  private maybeFinish(f: Flow, now: number): void {
    if (f.finSeen && !f.closed && f.held.length === 0 && seqDiff(f.finSeq, f.nextSeq) <= 0) {
      this.close(f, now, E.flows_closed_fin);
    }
  }

  /** Give up the hole in front of the first held segment. */
  private skipHole(f: Flow, reason: number, cause: GapCause): void {
    const size = f.holeSize();
    if (size <= 0) return;
    this.events[reason]++;
    this.gap(f, size, cause);
  }

  private gap(f: Flow, bytes: number, cause: GapCause): void {
    if (bytes <= 0) return;
    this.events[E.gap_bytes] += bytes;
    this.forget(f);
    f.sink.gap(bytes, cause);
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
        this.skipHole(biggest, E.holes_skipped_memcap, 'memcap');
        this.drain(biggest, now);
      }
      if (biggest === current) return;
    }
  }

  /** Ends the flow and takes it out of the table; with `linger`, its tomb stays for closedLingerMs. */
  private close(f: Flow, now: number, reason: number, linger = true): void {
    this.events[reason]++;
    this.open--;
    f.closed = true;
    this.heldTotal -= f.heldBytes;
    f.held = [];
    f.heldBytes = 0;
    f.conflicts = null;
    this.forget(f);
    f.sink.end();
    // Callers still holding f (a drain that closed it) must not reach the parser after end().
    f.sink = ENDED_SINK;
    f.peer = null;
    this.unlink(f);
    if (linger) this.tombs.bury(f, now);
  }

  private create(p: Packet, hash: number, now: number, midstream: boolean): Flow {
    if (this.count + this.tombs.size >= this.opts.maxFlows) this.evictOldest(now);
    const f = new Flow();
    f.ipVersion = p.ipVersion;
    f.vni = p.vni;
    f.s0 = p.src[0]; f.s1 = p.src[1]; f.s2 = p.src[2]; f.s3 = p.src[3];
    f.d0 = p.dst[0]; f.d1 = p.dst[1]; f.d2 = p.dst[2]; f.d3 = p.dst[3];
    f.sport = p.srcPort;
    f.dport = p.dstPort;
    f.hash = hash;
    f.lastSeen = now;
    f.lastData = now;
    const c = !this.toClient;
    f.info = { clientAddr: formatAddress(p, c), clientPort: c ? p.srcPort : p.dstPort, serverAddr: formatAddress(p, !c), serverPort: c ? p.dstPort : p.srcPort, ipVersion: p.ipVersion };
    if (p.vni >= 0) f.info.vni = p.vni;
    f.sink = this.sinkFactory(f.info, midstream);
    f.next = this.buckets.get(hash) ?? null;
    this.buckets.set(hash, f);
    this.count++;
    this.open++;
    this.events[E.flows_created]++;
    if (midstream) this.events[E.flows_midstream]++;
    return f;
  }

  /** The table is full: forget the oldest closed flow, or else end the longest idle one. */
  private evictOldest(now: number): void {
    if (this.tombs.dropOldest()) return;
    let oldest: Flow | null = null;
    for (const head of this.buckets.values()) for (let f: Flow | null = head; f; f = f.next) if (!oldest || f.lastSeen < oldest.lastSeen) oldest = f;
    if (oldest) this.close(oldest, now, E.flows_evicted, false);
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

  /** 30-bit hash (a small integer, so Map lookups don't box) of the client-to-server key, VNI included. */
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
    h = Math.imul(h ^ p.vni, 0x01000193);
    return (h ^ (h >>> 15)) & 0x3fffffff;
  }

  private find(p: Packet, hash: number, reverse: boolean): Flow | null {
    const a = reverse ? p.dst : p.src;
    const b = reverse ? p.src : p.dst;
    const sp = reverse ? p.dstPort : p.srcPort;
    const dp = reverse ? p.srcPort : p.dstPort;
    for (let f = this.buckets.get(hash) ?? null; f; f = f.next) {
      if (f.sport === sp && f.dport === dp && f.s0 === a[0] && f.d0 === b[0] && f.s1 === a[1] && f.s2 === a[2] && f.s3 === a[3] && f.d1 === b[1] && f.d2 === b[2] && f.d3 === b[3] && f.ipVersion === p.ipVersion && f.vni === p.vni) return f;
    }
    return null;
  }
}
