/**
 * What the request parser reports besides requests: whole requests dropped with their bytes, and
 * bytes skipped between them, coalesced per reason into one onDrop(reason, 0, n). The accounting
 * rules (which bytes go where, and which reason wins) are stated in parser.ts.
 */
import type { GapCause, TaintCause } from '../reassemble/stream.js';
import type { HttpDropReason, HttpParserEvents } from './types.js';

/** A gap's reason, after its cause. */
export const GAP_REASON: Record<GapCause, HttpDropReason> = {
  lost: 'stream_gap',
  kernel_drop: 'stream_gap_kernel_drop',
  truncated: 'stream_truncated',
  flow_cap: 'stream_flow_cap',
  memcap: 'stream_memcap',
};
export const GAP_REASONS = new Set<HttpDropReason>(Object.values(GAP_REASON));
export const TAINT_REASON: Record<TaintCause, HttpDropReason> = { overlap_conflict: 'stream_overlap_conflict' };

export class DropLedger {
  /**
   * Set once the server cannot have processed what follows on this connection (a refused head,
   * Connection: close, an upgrade, the HTTP/2 preface, a taint). Parsing goes on only to count:
   * every request still delimited, and every other byte, is dropped under this reason.
   */
  muted: HttpDropReason | null = null;
  /** The next request was already counted (taint between requests): its drop becomes skipped bytes. */
  precounted = false;
  /** Requests emitted on this connection and their bytes: the mean sizes what a gap swallowed. */
  private seenRequests = 0;
  private seenBytes = 0;
  private skipReason: HttpDropReason = 'http_midstream_skipped';
  private skipBytes = 0;

  constructor(private readonly events: HttpParserEvents) {}

  /** From now on every drop and skip carries `reason`, unless an earlier one already does. */
  mute(reason: HttpDropReason): void {
    if (this.muted === null) this.muted = reason;
  }

  /** `requests` requests lost, `bytes` of them seen. */
  drop(reason: HttpDropReason, bytes: number, requests = 1): void {
    if (this.muted !== null) reason = this.muted;
    if (this.precounted) {
      this.precounted = false;
      if (--requests === 0) {
        this.skip(reason, bytes);
        return;
      }
    }
    this.flush();
    this.events.onDrop(reason, requests, bytes);
  }

  /** Bytes that belong to no request, or to one already counted. */
  skip(reason: HttpDropReason, n: number): void {
    if (n <= 0) return;
    if (this.muted !== null) reason = this.muted;
    if (this.skipBytes > 0 && this.skipReason !== reason) this.flush();
    this.skipReason = reason;
    this.skipBytes += n;
  }

  /** Report the skipped bytes so far (before a request or drop, and at the end of each push). */
  flush(): void {
    const n = this.skipBytes;
    if (n === 0) return;
    this.skipBytes = 0;
    this.events.onDrop(this.skipReason, 0, n);
  }

  /** A request of `bytes` was emitted. */
  emitted(bytes: number): void {
    this.seenRequests++;
    this.seenBytes += bytes;
  }

  /**
   * How many requests `bytes` lost between requests held: at least one (a client sends nothing
   * else), estimated from this connection's mean request size (exact for uniform keep-alive).
   */
  lostIn(bytes: number): number {
    if (this.seenRequests === 0) return 1;
    return Math.max(1, Math.round((bytes * this.seenRequests) / this.seenBytes));
  }
}
