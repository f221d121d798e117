import { A, S, type DecodeCounters } from './anomalies.js';
import type { Packet } from './packet.js';

/**
 * IPv4 (RFC 791) and IPv6 (RFC 8200 §4.5) fragment reassembly, for the frames the kernel has not
 * put together already (the main-thread ring and --pcap files; worker rings ask the kernel to
 * defragment). Held bytes are copies, bounded by a global cap; every datagram given up is counted
 * once under a fragment_* anomaly, and its later fragments as skips (fragment_discarded).
 *
 * Overlaps: where a retransmitted fragment overlaps held bytes, the bytes must be equal, else the
 * server's copy is unknown (its OS kept one of them, or dropped the datagram): the datagram is
 * given up (fragment_overlap), and TCP's retransmission (or a counted stream gap) follows. IPv6
 * goes further, as RFC 5722 requires of the server: any partial overlap gives the datagram up; a
 * fragment wholly inside held bytes is a duplicate (RFC 8200 §4.5 lets it be ignored).
 */
export interface FragmentOptions {
  /** Bytes all incomplete datagrams may hold, bookkeeping overheads included. */
  memcapBytes: number;
  /** How long a datagram may wait for its missing fragments. */
  timeoutMs: number;
}

/**
 * 4 MiB holds 64 maximal datagrams at once, far more than TCP over fragments needs. 30 s is
 * Linux's ipfrag_time: the server gives up then, so we never give up what it could still complete.
 * (RFC 8200's 60 s for IPv6 would only hold memory longer: a TCP hole is skipped after
 * --hole-timeout anyway.)
 */
export const DEFAULT_FRAGMENT_OPTIONS: FragmentOptions = { memcapBytes: 4 << 20, timeoutMs: 30_000 };

const MAX_DATAGRAM = 65535;
/** Pieces held per datagram: a 64 KiB datagram at 576-byte MTU needs 117; more is an attack. */
const MAX_PIECES = 128;
/** Charged to the cap besides the bytes, so that many tiny fragments cannot hide their cost. */
const PIECE_OVERHEAD = 64;
const DATAGRAM_OVERHEAD = 256;

interface Piece {
  start: number;
  end: number;
  data: Uint8Array;
}

class Datagram {
  /** Sorted by start, never overlapping. */
  pieces: Piece[] = [];
  /** The offset-0 fragment's IPv4 header, or its IPv6 fixed header. */
  header: Uint8Array | null = null;
  /** IPv6: the offset-0 fragment's Next Header (RFC 8200 §4.5 uses only that one). */
  next = 0;
  /** End of the data, known once the last fragment (M=0) is in. */
  end = -1;
  held = 0;
  charge = DATAGRAM_OVERHEAD;
  /** Given up and counted; kept until its deadline so later fragments are not counted again. */
  discarded = false;
  constructor(
    readonly version: number,
    readonly deadline: number,
  ) {}
}

export class FragmentReassembler {
  private readonly datagrams = new Map<string, Datagram>();
  private bytes = 0;
  /** The last sweep's clock: one read per sweep, like the flow table. */
  private now = Date.now();
  /** Datagrams put back together. */
  reassembled = 0;

  constructor(
    private readonly c: DecodeCounters,
    private readonly opts: FragmentOptions,
  ) {}

  /** Bytes charged against the cap. */
  get heldBytes(): number {
    return this.bytes;
  }
  /** Incomplete and given-up datagrams remembered. */
  get pending(): number {
    return this.datagrams.size;
  }

  /** Sets the clock and gives up datagrams past their deadline. */
  sweep(now: number): void {
    this.now = now;
    // Insertion order is deadline order: stop at the first one still waiting.
    for (const [key, d] of this.datagrams) {
      if (d.deadline > now) break;
      if (!d.discarded) this.c.anomalies[A.fragment_timeout]++;
      this.remove(key, d);
    }
  }

  /**
   * Takes the fragment the IP decoder left in `p`. Returns the datagram it completes (IP header
   * and whole payload, unfragmented, in an owned buffer), or null with the frame counted.
   */
  add(p: Packet): Uint8Array | null {
    const key = fragmentKey(p);
    let d = this.datagrams.get(key);
    if (d === undefined) {
      d = new Datagram(p.ipVersion, this.now + this.opts.timeoutMs);
      this.datagrams.set(key, d);
      this.bytes += d.charge;
    }
    if (d.discarded) {
      this.c.skips[S.fragment_discarded]++;
      return null;
    }
    const problem = this.insert(d, p);
    if (problem >= 0) {
      this.giveUp(d, problem);
      return null;
    }
    if (d.end >= 0 && d.held === d.end && d.header !== null) return this.complete(key, d);
    if (problem === DUPLICATE) this.c.skips[S.fragment_duplicate]++;
    else this.c.skips[S.fragment_held]++;
    this.enforceCap(d);
    return null;
  }

  /** Stores what the fragment adds. Returns an anomaly index, HELD or DUPLICATE. */
  private insert(d: Datagram, p: Packet): number {
    const bad = checkFragment(d, p);
    if (bad >= 0) return bad;
    const s = p.fragOffset;
    const data = p.buf.subarray(p.l4Offset, p.ipEnd);
    const e = s + data.length;
    const covered = heldOverlap(d, s, e, data);
    if (covered < 0 || (d.version === 6 && covered > 0 && covered < e - s)) return A.fragment_overlap;
    if (covered < e - s) {
      const gaps = uncovered(d, s, e, data);
      if (d.pieces.length + gaps.length > MAX_PIECES) return A.fragment_too_many;
      this.keep(d, gaps);
    }
    if (!p.fragMore) d.end = e;
    if (s === 0 && d.header === null) {
      const h = new Uint8Array(p.buf.subarray(p.l3Offset, d.version === 4 ? p.l4Offset : p.l3Offset + 40));
      d.header = h;
      d.next = p.fragProto;
      d.charge += h.length;
      this.bytes += h.length;
    }
    return covered === e - s ? DUPLICATE : HELD;
  }

  private keep(d: Datagram, gaps: Piece[]): void {
    for (const g of gaps) {
      d.pieces.push(g);
      d.held += g.data.length;
      d.charge += g.data.length + PIECE_OVERHEAD;
      this.bytes += g.data.length + PIECE_OVERHEAD;
    }
    d.pieces.sort((a, b) => a.start - b.start);
  }

  private complete(key: string, d: Datagram): Uint8Array | null {
    const h = d.header!;
    if (d.version === 4 && h.length + d.end > MAX_DATAGRAM) {
      this.giveUp(d, A.fragment_too_big); // the offset-0 fragment's header was longer than the others'
      return null;
    }
    this.remove(key, d);
    this.reassembled++;
    const out = Buffer.allocUnsafe(h.length + d.end);
    out.set(h, 0);
    for (const pc of d.pieces) out.set(pc.data, h.length + pc.start);
    if (d.version === 4) {
      out.writeUInt16BE(h.length + d.end, 2);
      out[6] &= 0xc0; // no more fragments, offset 0 (the checksum is stale: nothing here checks it)
      out[7] = 0;
    } else {
      // The unfragmentable extension headers stay behind: nothing after IP reads them.
      out.writeUInt16BE(d.end, 4);
      out[6] = d.next;
    }
    return out;
  }

  /** Counts the datagram once and forgets its bytes; it stays as a marker until its deadline. */
  private giveUp(d: Datagram, anomaly: number): void {
    this.c.anomalies[anomaly]++;
    this.bytes -= d.charge - DATAGRAM_OVERHEAD;
    d.charge = DATAGRAM_OVERHEAD;
    d.pieces = [];
    d.header = null;
    d.held = 0;
    d.discarded = true;
  }

  private remove(key: string, d: Datagram): void {
    this.datagrams.delete(key);
    this.bytes -= d.charge;
  }

  /** Over the cap: forget markers first, then the oldest datagrams, the current one last. */
  private enforceCap(current: Datagram): void {
    const cap = this.opts.memcapBytes;
    if (this.bytes <= cap) return;
    for (const [key, d] of this.datagrams) {
      if (d.discarded && d !== current) this.remove(key, d);
      if (this.bytes <= cap) return;
    }
    for (const [key, d] of this.datagrams) {
      if (d === current) continue;
      this.c.anomalies[A.fragment_memcap]++;
      this.remove(key, d);
      if (this.bytes <= cap) return;
    }
    this.giveUp(current, A.fragment_memcap);
  }
}

const HELD = -1;
const DUPLICATE = -2;

/** RFC 791: source, destination, protocol, id. RFC 8200: source, destination, id. */
function fragmentKey(p: Packet): string {
  const s = p.src;
  const d = p.dst;
  if (p.ipVersion === 4) return `4 ${s[0]} ${d[0]} ${p.fragProto} ${p.fragId}`;
  return `6 ${s[0]} ${s[1]} ${s[2]} ${s[3]} ${d[0]} ${d[1]} ${d[2]} ${d[3]} ${p.fragId}`;
}

/** A fragment that cannot belong to a well-formed datagram: its anomaly index, else -1. */
function checkFragment(d: Datagram, p: Packet): number {
  if (p.ipEnd > p.capEnd) return A.fragment_truncated;
  const len = p.ipEnd - p.l4Offset;
  const s = p.fragOffset;
  const e = s + len;
  // Non-last fragments carry multiples of 8 bytes, or the next offset could not follow them.
  if (len <= 0 || (p.fragMore && (len & 7) !== 0)) return A.fragment_bad_length;
  const headerLen = d.version === 4 ? p.l4Offset - p.l3Offset : p.l4Offset - p.l3Offset - 48;
  if (headerLen + e > MAX_DATAGRAM) return A.fragment_too_big;
  if (p.fragMore) return d.end >= 0 && e > d.end ? A.fragment_bad_length : -1;
  // The last fragment: one end only, and nothing held beyond it.
  if (d.end >= 0 && e !== d.end) return A.fragment_bad_length;
  const last = d.pieces.length ? d.pieces[d.pieces.length - 1].end : 0;
  return last > e ? A.fragment_bad_length : -1;
}

/** Bytes of [s, e) already held, or -1 if any of them differ from `data`. */
function heldOverlap(d: Datagram, s: number, e: number, data: Uint8Array): number {
  let covered = 0;
  for (const pc of d.pieces) {
    if (pc.end <= s) continue;
    if (pc.start >= e) break;
    const from = Math.max(s, pc.start);
    const to = Math.min(e, pc.end);
    for (let i = from; i < to; i++) if (pc.data[i - pc.start] !== data[i - s]) return -1;
    covered += to - from;
  }
  return covered;
}

/** Copies of the parts of [s, e) not held yet. */
function uncovered(d: Datagram, s: number, e: number, data: Uint8Array): Piece[] {
  const out: Piece[] = [];
  let at = s;
  for (const pc of d.pieces) {
    if (at >= e) break;
    if (pc.end <= at) continue;
    if (pc.start > at) out.push(piece(at, Math.min(pc.start, e), s, data));
    at = Math.max(at, pc.end);
  }
  if (at < e) out.push(piece(at, e, s, data));
  return out;
}

function piece(start: number, end: number, base: number, data: Uint8Array): Piece {
  return { start, end, data: new Uint8Array(data.subarray(start - base, end - base)) };
}
