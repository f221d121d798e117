import { SideView } from './reset.js';
import { seqAdd, seqDiff } from './seq.js';
import type { FlowInfo, StreamSink } from './stream.js';

/** An out-of-order segment, copied because the ring view it came from will be reused. */
export interface HeldSegment {
  seq: number;
  data: Buffer;
  /** Bytes after `data` that were on the wire but not captured. */
  missing: number;
}

/** The server side of a flow, as far as the capture carries it (both directions mirrored). */
export class PeerView extends SideView {
  /** Next sequence number in order: payload before it was handed to the sink's `peer`. */
  next = 0;
  /** Just past the highest sequence number seen (payload or FIN), beyond a hole if there is one. */
  maxEnd = 0;
  /** False once a byte in order was not captured (snaplen): nothing after it is handed on. */
  delivering = true;
}

/** One direction (client to server) of one TCP connection. */
export class Flow {
  // Key: for IPv4 only s0/d0 are used.
  s0 = 0; s1 = 0; s2 = 0; s3 = 0;
  d0 = 0; d1 = 0; d2 = 0; d3 = 0;
  sport = 0;
  dport = 0;
  ipVersion = 4;
  /** The mirror session's VNI when decode took the tunnel off itself, else -1 (Packet.vni). */
  vni = -1;
  hash = 0;
  /** Chaining in the table's bucket. */
  next: Flow | null = null;

  info!: FlowInfo;
  sink!: StreamSink;

  isn = 0;
  synSeen = false;
  /** Next byte expected in order. */
  nextSeq = 0;
  /** Sequence number just past the last byte, once a FIN is seen. */
  finSeq = 0;
  finSeen = false;
  closed = false;
  /** Closed by a reset the receiver accepted: a SYN after it starts a new connection, even with the same ISN. */
  closedByRst = false;
  lastSeen = 0;

  held: HeldSegment[] = [];
  heldBytes = 0;
  /** Longest segment ever held: bounds the backward scan for overlaps among held segments. */
  maxHeldLen = 0;
  /** Sequence ranges [start, end) whose held copies disagreed; tainted when delivered. Rarely set. */
  conflicts: Array<{ start: number; end: number }> | null = null;

  /**
   * The last `recentLen` bytes delivered (they end at nextSeq, in recent[recentEnd - recentLen,
   * recentEnd)), kept only while the sink has a message in progress, to check overlapping
   * retransmissions against. Null between messages.
   */
  recent: Buffer | null = null;
  recentEnd = 0;
  recentLen = 0;

  /** This direction's sender as its receiver sees it (to judge its resets). */
  readonly own = new SideView();
  /** The other direction, once a segment of it was seen (both directions mirrored). */
  peer: PeerView | null = null;

  /** When payload last arrived (ms), and whether the sink was told the flow stalled since. */
  lastData = 0;
  stallSignalled = false;
  /** When the oldest hole in front of `held` opened (ms). */
  holeSince = 0;

  /** Insert keeping `held` sorted by seq; returns false for an exact duplicate. */
  hold(seg: HeldSegment): boolean {
    const h = this.held;
    let lo = 0;
    let hi = h.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (seqDiff(h[mid].seq, seg.seq) < 0) lo = mid + 1;
      else hi = mid;
    }
    if (lo < h.length && h[lo].seq === seg.seq && h[lo].data.length >= seg.data.length) return false;
    h.splice(lo, 0, seg);
    this.heldBytes += seg.data.length;
    return true;
  }

  /**
   * Just past the highest sequence number seen (payload or FIN), beyond holes. Walks the held
   * segments (sorted by start, not by end): for the rare reset only.
   */
  maxEnd(): number {
    let end = this.nextSeq;
    for (const seg of this.held) {
      const e = seqAdd(seg.seq, seg.data.length + seg.missing);
      if (seqDiff(e, end) > 0) end = e;
    }
    if (this.finSeen && seqDiff(seqAdd(this.finSeq, 1), end) > 0) end = seqAdd(this.finSeq, 1);
    return end;
  }

  /** Distance from nextSeq to the first held segment (the hole size), or 0. */
  holeSize(): number {
    return this.held.length ? seqDiff(this.held[0].seq, this.nextSeq) : 0;
  }

  advance(n: number): void {
    this.nextSeq = seqAdd(this.nextSeq, n);
  }
}
