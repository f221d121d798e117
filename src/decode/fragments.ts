import { A, S, type DecodeCounters } from './anomalies.js';
import type { Packet } from './packet.js';

/**
 * IPv4 (RFC 791) and IPv6 (RFC 8200 §4.5) fragment reassembly, for the frames the kernel has not
 * put together already (the main-thread ring and --pcap files; worker rings ask the kernel to
 * defragment). A datagram's bytes are copied into 2 KiB pages at their offsets, taken from a free
 * list (allocating is what costs most), and the pages are what the global cap is charged: a tiny
 * fragment far into a datagram costs one page, not 64 KiB. The frame that completes a datagram
 * gets it copied out in one piece. Every datagram given up is counted once under a fragment_*
 * anomaly, and its later fragments as skips (fragment_discarded).
 *
 * Overlaps: where a retransmitted fragment overlaps held bytes, the bytes must be equal, else the
 * server's copy is unknown (its OS kept one of them, or dropped the datagram): the datagram is
 * given up (fragment_overlap), and TCP's retransmission (or a counted stream gap) follows. Equal
 * bytes are safe either way: a server that dropped the datagram (Linux drops any partial overlap)
 * gets a retransmission, which TCP reassembly takes as a duplicate. IPv6
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
 * 4 MiB holds about 1,800 one-page or 63 maximal datagrams at once, far more than TCP over
 * fragments needs, where a datagram's fragments arrive within milliseconds of each other. 30 s is
 * Linux's ipfrag_time: the server gives up then, so we never give up what it could still complete.
 * (RFC 8200's 60 s for IPv6 would only hold memory longer: a TCP hole is skipped after
 * --hole-timeout anyway.)
 */
export const DEFAULT_FRAGMENT_OPTIONS: FragmentOptions = { memcapBytes: 4 << 20, timeoutMs: 30_000 };

const MAX_DATAGRAM = 65535;
/** Fragments stored per datagram: a 64 KiB datagram at 576-byte MTU needs 117; more is an attack. */
const MAX_FRAGMENTS = 128;
/** Charged to the cap besides the pages, so that many tiny datagrams cannot hide their cost. */
const DATAGRAM_OVERHEAD = 256;
const PAGE_SHIFT = 11;
const PAGE = 1 << PAGE_SHIFT;
/** Free pages kept for reuse (512 KiB). */
const KEEP_PAGES = 256;
/** Room before the data for the longest IPv4 header. */
const HEADROOM = 60;
/** Data room of the buffers complete datagrams are copied into (one lent at a time). */
const OUT_SIZES = [4096, 16384, MAX_DATAGRAM];

/** Reused buffers: pages for held bytes, headers, and a few output buffers per size. */
class Buffers {
  private readonly pages: Buffer[] = [];
  private readonly headers: Buffer[] = [];
  private readonly outs: Buffer[][] = OUT_SIZES.map(() => []);

  page(): Buffer {
    return this.pages.pop() ?? Buffer.allocUnsafeSlow(PAGE); // not pooled: it may be held for a while
  }
  givePage(b: Buffer): void {
    if (this.pages.length < KEEP_PAGES) this.pages.push(b);
  }
  header(): Buffer {
    return this.headers.pop() ?? Buffer.allocUnsafeSlow(HEADROOM);
  }
  giveHeader(b: Buffer): void {
    if (this.headers.length < KEEP_PAGES) this.headers.push(b);
  }
  /** HEADROOM plus at least `size` bytes; contents stale. */
  out(size: number): Buffer {
    let k = 0;
    while (OUT_SIZES[k] < size) k++;
    return this.outs[k].pop() ?? Buffer.allocUnsafeSlow(HEADROOM + OUT_SIZES[k]);
  }
  giveOut(b: Buffer): void {
    const k = OUT_SIZES.indexOf(b.length - HEADROOM);
    if (this.outs[k].length < 2) this.outs[k].push(b);
  }
}

class Datagram {
  /** Page i holds data bytes [i * PAGE, (i + 1) * PAGE); only where something is held. */
  pages: Array<Buffer | undefined> = [];
  /** Data held, as [start, end) pairs: sorted, disjoint, not touching. */
  ranges: number[] = [];
  fragments = 0;
  /** The offset-0 fragment's IPv4 header, or its IPv6 fixed header. */
  header: Buffer | null = null;
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
  private readonly buffers = new Buffers();
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
    // All of them (the cap keeps them few): a wall clock set back must not hide later deadlines.
    for (const [key, d] of this.datagrams) {
      if (d.deadline > now) continue;
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
    if (lent !== null) this.buffers.giveOut(lent);
    return out;
  }

  private release(): void {
    if (this.lent !== null) this.buffers.giveOut(this.lent);
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
      this.enforceCap(key, d); // a new marker costs too
      return null;
    }
    if (d.end >= 0 && d.header !== null && d.ranges.length === 2 && d.ranges[1] === d.end) return this.complete(key, d);
    if (problem === DUPLICATE) this.c.skips[S.fragment_duplicate]++;
    else this.c.skips[S.fragment_held]++;
    this.enforceCap(key, d);
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
      this.write(d, s, data); // bytes already held are equal: writing them again is harmless
      addRange(d.ranges, s, e);
    }
    if (!p.fragMore) d.end = e;
    if (s === 0 && d.header === null) {
      d.headerLen = d.version === 4 ? p.l4Offset - p.l3Offset : 40;
      d.header = this.buffers.header();
      d.header.set(p.buf.subarray(p.l3Offset, p.l3Offset + d.headerLen));
      d.next = p.fragProto;
    }
    return covered === e - s ? DUPLICATE : HELD;
  }

  /** Copies `data` to offset `s` of the datagram, page by page. */
  private write(d: Datagram, s: number, data: Uint8Array): void {
    const e = s + data.length;
    for (let at = s; at < e; ) {
      const i = at >> PAGE_SHIFT;
      const to = Math.min(e, (i + 1) * PAGE);
      let page = d.pages[i];
      if (page === undefined) {
        page = d.pages[i] = this.buffers.page();
        d.charge += PAGE;
        this.bytes += PAGE;
      }
      page.set(data.subarray(at - s, to - s), at - i * PAGE);
      at = to;
    }
  }

  private complete(key: string, d: Datagram): Uint8Array | null {
    const h = d.headerLen;
    if (d.version === 4 && h + d.end > MAX_DATAGRAM) {
      this.giveUp(d, A.fragment_too_big); // the offset-0 fragment's header was longer than the others'
      return null;
    }
    const buf = this.buffers.out(d.end);
    d.header!.copy(buf, HEADROOM - h, 0, h);
    for (let i = 0; i * PAGE < d.end; i++) buf.set(d.pages[i]!.subarray(0, Math.min(PAGE, d.end - i * PAGE)), HEADROOM + i * PAGE);
    this.remove(key, d);
    this.reassembled++;
    this.lent = buf;
    const out = buf.subarray(HEADROOM - h, HEADROOM + d.end);
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

  private freePages(d: Datagram): void {
    for (const page of d.pages) if (page !== undefined) this.buffers.givePage(page);
    d.pages = [];
    if (d.header !== null) this.buffers.giveHeader(d.header);
    d.header = null;
  }

  /** Counts the datagram once and forgets its bytes; it stays as a marker until its deadline. */
  private giveUp(d: Datagram, anomaly: number): void {
    this.c.anomalies[anomaly]++;
    this.bytes -= d.charge - DATAGRAM_OVERHEAD;
    d.charge = DATAGRAM_OVERHEAD;
    this.freePages(d);
    d.ranges = [];
    d.discarded = true;
  }

  private remove(key: string, d: Datagram): void {
    this.datagrams.delete(key);
    this.bytes -= d.charge;
    this.freePages(d);
  }

  /** Over the cap: forget markers first, then the oldest datagrams, the current one last. */
  private enforceCap(key: string, current: Datagram): void {
    const cap = this.opts.memcapBytes;
    for (const [k, d] of this.datagrams) {
      if (this.bytes <= cap) return;
      if (d.discarded) this.remove(k, d); // at worst its late fragments count once more
    }
    for (const [k, d] of this.datagrams) {
      if (this.bytes <= cap) return;
      if (d === current) continue;
      this.c.anomalies[A.fragment_memcap]++;
      this.remove(k, d);
    }
    if (this.bytes <= cap || this.datagrams.get(key) !== current) return;
    this.c.anomalies[A.fragment_memcap]++; // a cap smaller than this one datagram
    this.remove(key, current);
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
    if (!sameBytes(d, from, to, data, s)) return -1;
    covered += to - from;
  }
  return covered;
}

/** Whether held bytes [from, to) equal data's bytes there (data starts at offset s). */
function sameBytes(d: Datagram, from: number, to: number, data: Uint8Array, s: number): boolean {
  for (let at = from; at < to; ) {
    const i = at >> PAGE_SHIFT;
    const end = Math.min(to, (i + 1) * PAGE);
    if (d.pages[i]!.compare(data, at - s, end - s, at - i * PAGE, end - i * PAGE) !== 0) return false;
    at = end;
  }
  return true;
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
