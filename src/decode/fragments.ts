import { A, S, type DecodeCounters } from './anomalies.js';
import type { Packet } from './packet.js';

/**
 * IPv4 (RFC 791) and IPv6 (RFC 8200 §4.5) fragment reassembly, for the frames the kernel has not
 * put together already (the main-thread ring and --pcap files; worker rings ask the kernel to
 * defragment). Each datagram's bytes are copied into one buffer (4, 16 or 64 KiB, reused), whose
 * size is charged against a global cap; the frame that completes it gets the datagram in place,
 * with no further copy. Every datagram given up is counted once under a fragment_* anomaly, and
 * its later fragments as skips (fragment_discarded).
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
 * 4 MiB holds about 900 small (4 KiB) or 60 maximal datagrams at once, far more than TCP over
 * fragments needs, where a datagram's fragments arrive within milliseconds of each other. 30 s is
 * Linux's ipfrag_time: the server gives up then, so we never give up what it could still complete.
 * (RFC 8200's 60 s for IPv6 would only hold memory longer: a TCP hole is skipped after
 * --hole-timeout anyway.)
 */
export const DEFAULT_FRAGMENT_OPTIONS: FragmentOptions = { memcapBytes: 4 << 20, timeoutMs: 30_000 };

const MAX_DATAGRAM = 65535;
/** Fragments stored per datagram: a 64 KiB datagram at 576-byte MTU needs 117; more is an attack. */
const MAX_FRAGMENTS = 128;
/** Charged to the cap besides the buffer, so that many tiny datagrams cannot hide their cost. */
const DATAGRAM_OVERHEAD = 256;
/** Room before the data for the longest IPv4 header, so a complete datagram needs no copy. */
const HEADROOM = 60;
/** Data room of the buffers a datagram grows through. */
const SIZES = [4096, 16384, MAX_DATAGRAM];
/** Free buffers kept for reuse, per size (about 0.5 MiB at most): allocating is the main cost. */
const KEEP_FREE = [32, 8, 4];

class BufferPool {
  private readonly free: Buffer[][] = SIZES.map(() => []);

  /** A buffer with HEADROOM plus at least `size` bytes; its contents are stale. */
  take(size: number): Buffer {
    let k = 0;
    while (SIZES[k] < size) k++;
    return this.free[k].pop() ?? Buffer.allocUnsafeSlow(HEADROOM + SIZES[k]);
  }
  give(b: Buffer): void {
    const k = SIZES.indexOf(b.length - HEADROOM);
    if (this.free[k].length < KEEP_FREE[k]) this.free[k].push(b);
  }
}

class Datagram {
  /** HEADROOM bytes, then the data at its offsets; grown as later fragments need. */
  buf: Buffer | null = null;
  /** Data held, as [start, end) pairs: sorted, disjoint, not touching. */
  ranges: number[] = [];
  fragments = 0;
  /** Length of the offset-0 fragment's IPv4 header, or 40 (the IPv6 fixed header), once in. */
  headerLen = 0;
  /** IPv6: the offset-0 fragment's Next Header (RFC 8200 §4.5 uses only that one). */
  next = 0;
  /** End of the data, known once the last fragment (M=0) is in. */
  end = -1;
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
  private readonly pool = new BufferPool();
  /** The buffer of the datagram last returned: the caller may read it until the next call. */
  private lent: Buffer | null = null;
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
    this.release();
    // Insertion order is deadline order: stop at the first one still waiting.
    for (const [key, d] of this.datagrams) {
      if (d.deadline > now) break;
      if (!d.discarded) this.c.anomalies[A.fragment_timeout]++;
      this.remove(key, d);
    }
  }

  /** Capture ended (shutdown, end of a pcap): what is still incomplete never will be. */
  closeAll(): void {
    for (const [key, d] of this.datagrams) {
      if (!d.discarded) this.c.anomalies[A.fragment_incomplete]++;
      this.remove(key, d);
    }
    this.release();
  }

  /**
   * Takes the fragment the IP decoder left in `p`. Returns the datagram it completes (IP header
   * and whole payload, unfragmented, in an owned buffer), or null with the frame counted.
   */
  add(p: Packet): Uint8Array | null {
    const lent = this.lent;
    this.lent = null;
    const out = this.addFragment(p);
    // Only now: p.buf may be the datagram lent last time (IPv6 nested in IPv6).
    if (lent !== null) this.pool.give(lent);
    return out;
  }

  private release(): void {
    if (this.lent !== null) this.pool.give(this.lent);
    this.lent = null;
  }

  private addFragment(p: Packet): Uint8Array | null {
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
    if (d.end >= 0 && d.headerLen > 0 && d.ranges.length === 2 && d.ranges[1] === d.end) return this.complete(key, d);
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
      if (++d.fragments > MAX_FRAGMENTS) return A.fragment_too_many;
      this.reserve(d, e);
      d.buf!.set(data, HEADROOM + s); // bytes already held are equal: writing them again is harmless
      addRange(d.ranges, s, e);
    }
    if (!p.fragMore) d.end = e;
    if (s === 0 && d.headerLen === 0) {
      d.headerLen = d.version === 4 ? p.l4Offset - p.l3Offset : 40;
      this.reserve(d, e);
      d.buf!.set(p.buf.subarray(p.l3Offset, p.l3Offset + d.headerLen), HEADROOM - d.headerLen);
      d.next = p.fragProto;
    }
    return covered === e - s ? DUPLICATE : HELD;
  }

  /** Makes room for data up to `end`, moving what is held to a bigger buffer if need be. */
  private reserve(d: Datagram, end: number): void {
    const old = d.buf;
    if (old !== null && old.length - HEADROOM >= end) return;
    const buf = this.pool.take(end);
    const grown = buf.length - (old ? old.length : 0);
    if (old !== null) {
      old.copy(buf);
      this.pool.give(old);
    }
    this.bytes += grown;
    d.charge += grown;
    d.buf = buf;
  }

  private complete(key: string, d: Datagram): Uint8Array | null {
    const h = d.headerLen;
    if (d.version === 4 && h + d.end > MAX_DATAGRAM) {
      this.giveUp(d, A.fragment_too_big); // the offset-0 fragment's header was longer than the others'
      return null;
    }
    this.remove(key, d, true);
    this.reassembled++;
    this.lent = d.buf;
    const out = d.buf!.subarray(HEADROOM - h, HEADROOM + d.end);
    if (d.version === 4) {
      out.writeUInt16BE(h + d.end, 2);
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
    if (d.buf !== null) this.pool.give(d.buf);
    d.buf = null;
    d.ranges = [];
    d.discarded = true;
  }

  /** Forgets the datagram; its buffer goes back to the pool unless it was just completed. */
  private remove(key: string, d: Datagram, lent = false): void {
    this.datagrams.delete(key);
    this.bytes -= d.charge;
    if (d.buf !== null && !lent) this.pool.give(d.buf);
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
  const last = d.ranges.length ? d.ranges[d.ranges.length - 1] : 0;
  return last > e ? A.fragment_bad_length : -1;
}

/** Bytes of [s, e) already held, or -1 if any of them differ from `data`. */
function heldOverlap(d: Datagram, s: number, e: number, data: Uint8Array): number {
  const r = d.ranges;
  let covered = 0;
  for (let i = 0; i < r.length && r[i] < e; i += 2) {
    if (r[i + 1] <= s) continue;
    const from = Math.max(s, r[i]);
    const to = Math.min(e, r[i + 1]);
    if (d.buf!.compare(data, from - s, to - s, HEADROOM + from, HEADROOM + to) !== 0) return -1;
    covered += to - from;
  }
  return covered;
}

/** Adds [s, e) to sorted disjoint ranges, merging those it touches. */
function addRange(r: number[], s: number, e: number): void {
  let i = 0;
  while (i < r.length && r[i + 1] < s) i += 2;
  let j = i;
  let lo = s;
  let hi = e;
  for (; j < r.length && r[j] <= e; j += 2) {
    lo = Math.min(lo, r[j]);
    hi = Math.max(hi, r[j + 1]);
  }
  r.splice(i, j - i, lo, hi);
}
