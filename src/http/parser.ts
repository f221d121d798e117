/**
 * Incremental HTTP/1.x request parser for one client-to-server stream (RFC 9112).
 *
 * Byte accounting: every byte handed to push() ends up either in an emitted request or in the `skippedBytes` of exactly
 * one onDrop call. A dropped request reports the bytes it had consumed so far in its own onDrop(reason, 1, n); bytes it
 * still occupies afterwards (the rest of a Content-Length or chunked body skipped to stay in sync, everything after an
 * upgrade) follow as onDrop(reason, 0, n); bytes skipped while hunting for the next request line are
 * onDrop('http_midstream_skipped', 0, n). Gap bytes were never pushed and are not counted here.
 *
 * Choices where RFC 9112 leaves room:
 * - A bare LF line terminator is rejected (http_malformed), as is a bare CR: the server we mirror
 *   may have read the bytes differently, so the request is not replayed.
 * - Resync (midstream pickup, after a gap) accepts a request line only at stream start, right after a gap, or right
 *   after CRLF, and only as `UPPERCASE-METHOD SP target SP HTTP/1.[01] CRLF`. Body bytes that form such a line after a
 *   CRLF are taken for a request: an accepted risk, no passive observer can tell them apart.
 * - Never resync after a refusal. A request refused for its head or framing (malformed, over a head limit, ambiguous
 *   framing, a bad chunk) leaves the rest of the connection unframed, and a server answers 400 and closes (§9.6):
 *   whatever follows is counted under http_after_refused, as requests where a request line can still be found, as bytes
 *   otherwise. Never replayed.
 * - A body over our limit is not a refusal: its framing is known, we skip it in sync and go on.
 * - The last request of a connection (§9.3: `Connection: close`, or HTTP/1.0 without keep-alive)
 *   ends what we replay; requests pipelined after it are counted under http_after_close.
 * - Once a connection is only counted (the cases above, an upgrade, the HTTP/2 preface, a taint),
 *   every later drop carries that first reason, so one cause explains the rest of the connection.
 * - A request whose header section is invalid is skipped as a whole (up to its empty line): the work stays linear.
 * - A limit fails at the exact byte that passes it, never at a push boundary, so the outcome does not depend on how the
 *   stream was cut. An oversized Content-Length body, a gap inside a body of known length and an oversized chunked body
 *   are skipped by their framing (in sync).
 * - Transfer-Encoding on HTTP/1.0 is http_ambiguous_framing (RFC 9112 §6.1: treat as faulty).
 * - Upgrade: h2c with HTTP2-Settings, when the caller takes it (onH2cUpgrade): the complete request and the rest of the
 *   stream are handed over (src/http2/switch.ts follows the connection).
 * - CONNECT and other Upgrades (Connection: upgrade + Upgrade) are not replayed (http_upgrade). When the capture
 *   carries the server's side (peer()), the client bytes after them are held (64 KiB at most) until its answer: 2xx to
 *   CONNECT or 101 switch the connection (the rest is counted as http_upgrade), any other final status leaves it in
 *   HTTP/1.1 and parsing goes on (RFC 9110 §7.8, §9.3.6). Without the server's side or an answer, a switch is assumed.
 * - `PRI *` in any version is the HTTP/2 preface's shape (RFC 9113 §3.4): http2_preface, and the
 *   rest of the connection is counted under it (a valid preface never gets here: src/http2/switch.ts).
 * - Gaps are named after their cause (lost, truncated by the capture, per-flow or global cap); taint() (reassembly saw
 *   two copies of the same bytes differ) drops the request in progress, or the next one if none is, and the rest of the
 *   connection is only counted (see taint()).
 * - Expect: 100-continue with a body: if no body byte arrives before stalled() (the table's hole timeout), the server
 *   refused or the client gave up; the request is dropped (http_expect_timeout) and parsing resumes by the resync rule
 *   (a late body cannot be told from a next request; a request line in it is the accepted resync risk).
 * - Absolute-form http(s) targets are emitted in origin form with `authority` set; an empty authority or one with
 *   userinfo is http_malformed (RFC 9110 §4.2.1, §4.2.4).
 *
 * This file holds the states and these rules; the parts it drives: request-line.ts (scanner), head.ts (head buffer,
 * fields, target), line-reader.ts and body.ts (body lines and pieces), drops.ts (the accounting above), verdict.ts
 * (the answer to CONNECT/Upgrade, held bytes).
 */
import type { GapCause, TaintCause } from '../reassemble/stream.js';
import {
  DEFAULT_HTTP_LIMITS,
  type HttpDropReason,
  type HttpParserEvents,
  type HttpParserLimits,
  type HttpRequest,
} from './types.js';
import { BodyParts } from './body.js';
import { DropLedger, GAP_REASON, GAP_REASONS, TAINT_REASON } from './drops.js';
import { BODY_CHUNKED, BODY_INVALID, fieldLine, type FieldBounds, parseChunkLine, requestFraming } from './grammar.js';
import { asksH2c, CONN_CLOSE, CONN_KEEP_ALIVE, CONN_UPGRADE, HeadBuffer, originForm, readFields, type RequestTarget } from './head.js';
import { LineReader } from './line-reader.js';
import { RequestLineScanner } from './request-line.js';
import { SwitchVerdict } from './verdict.js';

export interface HttpRequestParserOptions {
  /** The connection was picked up without its SYN: the stream may start inside a request. */
  midstream?: boolean;
}

// Parser states.
const LINE = 0; // request line (strict: expected here; not strict: candidate during a resync)
const SEEK = 1; // resync: skipping to the next CRLF
const HEAD = 2; // header section
const BODY = 3; // Content-Length body
const CHUNK_SIZE = 4;
const CHUNK_DATA = 5;
const CHUNK_CRLF = 6;
const TRAILER = 7;
const VERDICT = 8; // CONNECT/Upgrade sent, the server's answer not seen yet: client bytes held
const CLOSED = 9;

const CR = 13;
const LF = 10;
// Placeholder between requests; every request gets fresh arrays in completeHead.
const NO_FIELDS: string[] = [];

export class HttpRequestParser {
  private readonly events: HttpParserEvents;
  private readonly limits: HttpParserLimits;

  private state: number;
  /** In LINE: true when a request must start here (error if not), false while resyncing. */
  private strict: boolean;
  /** Last byte of the previous push (-1 after a gap), to see a CRLF split across pushes. */
  private lastByte = -1;
  private lastByte2 = -1;

  /** The request line, scanned incrementally so garbage is rejected at its first bad byte. */
  private readonly line = new RequestLineScanner();
  /** Request line + header section. */
  private readonly head = new HeadBuffer();

  // Request being built.
  private method = '';
  private target = '';
  private headers: string[] = NO_FIELDS;
  private trailers: string[] = NO_FIELDS;
  private chunked = false;
  private remaining = 0;
  private crlfIdx = 0;
  private trailerBytes = 0;
  private readonly body = new BodyParts();
  /** Chunk-size and trailer lines. */
  private readonly lines = new LineReader();

  /** Field line bounds set by fieldLine(), and the target set by originForm(). */
  private readonly field: FieldBounds = { nameEnd: 0, valueStart: 0, valueEnd: 0 };
  private readonly reqTarget: RequestTarget = { target: '', authority: undefined };

  /** Bytes of the current request consumed so far (or of the current resync candidate). */
  private reqBytes = 0;
  /** A request line has begun (leading empty lines do not count). */
  private reqStarted = false;
  /** The current request was already dropped; its remaining body is being skipped to stay in sync. */
  private discarding = false;
  private discardReason: HttpDropReason = 'stream_gap';

  /** Drops and skipped bytes reported, and the reason the connection is only counted (`muted`). */
  private readonly drops: DropLedger;
  /** The current request ends the connection (Connection: close, or HTTP/1.0 without keep-alive). */
  private closeAfter = false;
  /** The capture carries the server's side of this connection (peer() was called). */
  private peerVisible = false;
  /** State VERDICT: the answer being read, and the client bytes held until it is known. */
  private verdict: SwitchVerdict | null = null;
  /** A complete Expect: 100-continue head whose body has not started. */
  private expectWaiting = false;
  private authority: string | undefined = undefined;
  /** The request asks for h2c (see onH2cUpgrade); once complete it is `handed` over. */
  private h2c = false;
  private handed: HttpRequest | null = null;

  constructor(events: HttpParserEvents, limits: HttpParserLimits = DEFAULT_HTTP_LIMITS, opts: HttpRequestParserOptions = {}) {
    this.events = events;
    this.drops = new DropLedger(events);
    this.limits = limits;
    this.state = LINE;
    this.strict = opts.midstream !== true;
  }

  /** Bytes held across pushes: partial request line/header section, body pieces, partial chunk lines. */
  get bufferedBytes(): number {
    return this.head.len + this.lines.len + this.body.len + (this.verdict?.bufferedBytes ?? 0);
  }

  /** Bytes pushed so far that belong to a request (or resync candidate) still in progress. */
  get pendingBytes(): number {
    const st = this.state;
    if (st === VERDICT) return this.verdict!.heldLen;
    if (st === SEEK || st === CLOSED || this.discarding || this.drops.muted !== null) return 0;
    return this.reqBytes;
  }

  /** In-order stream bytes `buf[off..off+len)`, valid only during the call. */
  push(buf: Uint8Array, off: number, len: number): void {
    if (len <= 0 || this.state === CLOSED) return;
    const d = Buffer.from(buf.buffer, buf.byteOffset + off, len);
    let p = 0;
    while (p < len) {
      switch (this.state) {
        case LINE: p = this.onLine(d, p); break;
        case SEEK: p = this.onSeek(d, p); break;
        case HEAD: p = this.onHead(d, p); break;
        case BODY: p = this.onBody(d, p); break;
        case CHUNK_SIZE: p = this.onChunkSize(d, p); break;
        case CHUNK_DATA: p = this.onChunkData(d, p); break;
        case CHUNK_CRLF: p = this.onChunkCrlf(d, p); break;
        case TRAILER: p = this.onTrailer(d, p); break;
        case VERDICT: p = this.onHeld(d, p); break;
        default: // CLOSED: from a callback, or an h2c upgrade to hand over with the rest of the push
          if (this.handed !== null) this.handOff(d, p);
          return;
      }
    }
    this.lastByte2 = len >= 2 ? d[len - 2] : this.lastByte;
    this.lastByte = d[len - 1];
    this.settle();
  }

  /** A hole of `bytes` unknown bytes in the stream. */
  gap(bytes: number, cause: GapCause = 'lost'): void {
    if (bytes <= 0 || this.state === CLOSED) return;
    if (this.state === VERDICT) this.decideSwitch('switched');
    this.lastByte = -1;
    this.lastByte2 = -1;
    this.expectWaiting = false;
    const reason = GAP_REASON[cause];
    const st = this.state;
    let overrun = 0;
    const close = this.closeAfter;
    if (st === LINE) {
      // At a request boundary the lost bytes were requests (a client sends nothing else).
      if (this.strict) this.drop(reason, this.reqBytes, this.reqStarted ? 1 : this.drops.lostIn(bytes));
      else this.drops.skip('http_midstream_skipped', this.reqBytes);
    } else if (st === BODY || st === CHUNK_DATA) {
      if (!this.discarding) {
        this.drop(reason, this.reqBytes);
        this.startDiscard(reason);
      }
      // The body length is known, so the gap can be stepped over without a resync.
      if (this.remaining >= bytes) {
        this.remaining -= bytes;
        if (this.remaining === 0) {
          if (st === BODY) this.messageEnd();
          else { this.state = CHUNK_CRLF; this.crlfIdx = 0; }
        }
        this.settle();
        return;
      }
      // The gap runs past the body's end: the requests after it lie in it too.
      if (st === BODY) overrun = bytes - this.remaining;
    } else if (st !== SEEK && !this.discarding) {
      this.drop(reason, this.reqBytes);
    }
    // The byte after a gap is as good a request start as the first byte of a stream.
    this.reset(LINE, false);
    if (overrun > 0) {
      if (close) this.drops.mute('http_after_close');
      this.drop(reason, 0, this.drops.lostIn(overrun));
    }
    this.settle();
  }

  /**
   * Bytes of the request in progress (or, between requests, of the next one) may not be what the server received: drop
   * that request and stop parsing the connection. Neither our framing nor a resync can be trusted once two copies of the
   * stream disagree, and such a connection is broken or hostile; its remaining bytes are skipped under the same reason.
   */
  taint(cause: TaintCause): void {
    if (this.state === VERDICT) this.decideSwitch('switched');
    const st = this.state;
    if (st === CLOSED || this.drops.muted !== null) return;
    const reason = TAINT_REASON[cause];
    // Between requests, the next one is the ambiguous one: counted now, whether or not its bytes
    // still look like a request (the copy we got may be the forged one).
    const between = st === LINE && !this.reqStarted && this.strict;
    if (st === SEEK || (st === LINE && !this.strict)) this.drops.skip('http_midstream_skipped', this.reqBytes);
    else if (!this.discarding) this.drop(reason, this.reqBytes);
    this.drops.precounted = between;
    this.drops.mute(reason);
    this.reset(between ? LINE : SEEK, false);
    this.settle();
  }

  /** Server-to-client bytes of this connection, in order (len 0: the server side is visible); read while a CONNECT or Upgrade waits for its answer. */
  peer(buf: Uint8Array, off: number, len: number): void {
    this.peerVisible = true;
    if (this.state !== VERDICT || len <= 0) return;
    const v = this.verdict!.feed(buf, off, len);
    if (v !== 'pending') this.decideSwitch(v);
  }

  /** No byte arrived for the table's hole timeout: an Expect: 100-continue body is not coming. */
  stalled(): void {
    if (!this.expectWaiting) return;
    this.drop('http_expect_timeout', this.reqBytes);
    // Whatever comes next is a new request or the late body: resync decides.
    this.reset(LINE, false);
    this.settle();
  }

  /** The connection closed: a partial request is lost. */
  end(): void {
    if (this.state === CLOSED) return;
    if (this.state === VERDICT) this.decideSwitch('switched');
    const st = this.state;
    if (st === LINE) {
      if (this.strict && this.reqStarted) this.drop('http_incomplete', this.reqBytes);
      else this.drops.skip('http_midstream_skipped', this.reqBytes);
    } else if (st !== SEEK && !this.discarding) {
      this.drop('http_incomplete', this.reqBytes);
    }
    this.reset(CLOSED, false);
    this.drops.flush();
    this.head.buf = null;
    this.lines.release();
  }

  // ---- states ----

  private onLine(d: Buffer, p: number): number {
    const line = this.line;
    const strict = this.strict;
    const q = line.scan(d, p, strict, this.limits.maxRequestLineBytes);
    this.reqBytes += q - p;
    if (strict && line.begin >= 0) this.reqStarted = true;
    switch (line.result) {
      case 'need':
        if (line.begin >= 0) this.head.append(d, line.begin, q);
        return q;
      case 'accept':
        return this.lineAccepted(d, q);
      case 'h2':
        if (!strict) this.drops.flush();
        this.preface();
        this.reset(SEEK, false);
        return q;
      default:
        // The byte at q is not consumed: the resync scan starts on it.
        if (strict) this.refuse(line.result === 'long' ? 'http_line_too_long' : 'http_malformed');
        else this.drops.skip('http_midstream_skipped', this.reqBytes);
        this.reset(SEEK, false);
        return q;
    }
  }

  /** A request line ends before p: its head follows. */
  private lineAccepted(d: Buffer, p: number): number {
    if (!this.strict) {
      this.drops.flush();
      this.strict = true;
      this.reqStarted = true;
    }
    if (this.line.isPri) {
      // `PRI * HTTP/1.x` is the HTTP/2 preface's shape whatever its version: no HTTP/1.1 server
      // serves it, and what follows is HTTP/2 frames.
      this.preface();
      this.reset(LINE, false);
      return p;
    }
    this.state = HEAD;
    const h = this.head;
    const begin = this.line.begin;
    // Positions in `d` are only good for this push: buffer the line if the push ends here.
    if (h.len > 0 || p === d.length) {
      h.append(d, begin, p);
      h.reqLineLen = h.len;
      h.fast = false;
    } else {
      h.fast = true;
      h.start = begin;
      h.lineEnd = p;
    }
    return p;
  }

  private onSeek(d: Buffer, p: number): number {
    const i = d.indexOf(LF, p);
    if (i < 0) {
      this.drops.skip('http_midstream_skipped', d.length - p);
      return d.length;
    }
    this.drops.skip('http_midstream_skipped', i + 1 - p);
    if ((i > 0 ? d[i - 1] : this.lastByte) === CR) {
      this.state = LINE;
      this.strict = false;
    }
    return i + 1;
  }

  private onHead(d: Buffer, p: number): number {
    const n = d.length;
    const h = this.head;
    const fast = h.fast;
    const he = h.endIn(d, p);
    // The section may not pass this point; failing exactly here keeps results independent of
    // how the stream was cut into pushes.
    const limitAt = p + this.limits.maxHeaderBytes - h.sectionSoFar;
    h.fast = false;
    if ((he < 0 ? n : he) > limitAt) {
      this.reqBytes += limitAt - p;
      this.refuse('http_headers_too_large');
      this.reset(this.lineStartAt(d, limitAt) ? LINE : SEEK, false);
      return limitAt;
    }
    const stop = he < 0 ? n : he;
    this.reqBytes += stop - p;
    if (fast) {
      if (he >= 0) {
        this.completeHead(d, h.start, h.lineEnd, he);
        return he;
      }
      h.append(d, h.start, n);
      h.reqLineLen = h.lineEnd - h.start;
      return n;
    }
    h.append(d, p, stop);
    if (he >= 0) this.completeHead(h.buf!, 0, h.reqLineLen, h.len);
    return stop;
  }

  private onBody(d: Buffer, p: number): number {
    this.expectWaiting = false;
    const take = Math.min(this.remaining, d.length - p);
    this.bodyPiece(d, p, take);
    this.remaining -= take;
    if (this.remaining === 0) this.finish();
    return p + take;
  }

  private onChunkSize(d: Buffer, p: number): number {
    this.expectWaiting = false;
    const ln = this.lines;
    const q = ln.read(d, p, this.limits.maxRequestLineBytes);
    this.count(q - p);
    if (ln.over) return this.failBody('http_ambiguous_framing', d, q);
    const src = ln.src;
    if (src === null) return q;
    const cr = ln.e - 1;
    if (cr < ln.s || src[cr] !== CR) return this.failBody('http_ambiguous_framing', d, q);
    const size = parseChunkLine(src, ln.s, cr);
    if (size < 0) return this.failBody('http_ambiguous_framing', d, q);
    if (size === 0) {
      this.state = TRAILER;
      this.trailerBytes = 0;
      return q;
    }
    if (!this.discarding && this.body.len + size > this.limits.maxBodyBytes) {
      this.drop('http_body_too_large', this.reqBytes);
      this.startDiscard('http_body_too_large');
    }
    this.remaining = size;
    this.state = CHUNK_DATA;
    return q;
  }

  private onChunkData(d: Buffer, p: number): number {
    const take = Math.min(this.remaining, d.length - p);
    this.bodyPiece(d, p, take);
    this.remaining -= take;
    if (this.remaining === 0) {
      this.state = CHUNK_CRLF;
      this.crlfIdx = 0;
    }
    return p + take;
  }

  private onChunkCrlf(d: Buffer, p: number): number {
    const c = d[p];
    if (c !== (this.crlfIdx === 0 ? CR : LF)) return this.failBody('http_ambiguous_framing', d, p);
    this.count(1);
    if (++this.crlfIdx === 2) this.state = CHUNK_SIZE;
    return p + 1;
  }

  private onTrailer(d: Buffer, p: number): number {
    const maxHeader = this.limits.maxHeaderBytes;
    const ln = this.lines;
    const q = ln.read(d, p, maxHeader - this.trailerBytes);
    this.count(q - p);
    if (ln.over) return this.failBody('http_headers_too_large', d, q);
    const src = ln.src;
    if (src === null) return q;
    const s = ln.s;
    const cr = ln.e - 1;
    this.trailerBytes += ln.e + 1 - s;
    if (cr === s && src[cr] === CR) {
      this.finish();
      return q;
    }
    if (this.trailerBytes > maxHeader || this.trailers.length >= 2 * this.limits.maxHeaderCount) {
      return this.failBody('http_headers_too_large', d, q);
    }
    const fb = this.field;
    if (cr < s || src[cr] !== CR || !fieldLine(src, s, cr, fb)) return this.failBody('http_malformed', d, q);
    if (!this.discarding) {
      this.trailers.push(src.toString('latin1', s, fb.nameEnd), src.toString('latin1', fb.valueStart, fb.valueEnd));
    }
    return q;
  }

  // ---- header section ----

  /** Parse a complete head at src[hs..he) (request line ends at le) and set up the body. */
  private completeHead(src: Buffer, hs: number, le: number, he: number): void {
    const mlen = this.line.methodLen;
    const method = src.toString('latin1', hs, hs + mlen);
    const target = src.toString('latin1', hs + mlen + 1, hs + mlen + 1 + this.line.targetLen);
    const f = readFields(src, le, he, this.limits.maxHeaderCount, this.field);
    // A refused head: only count what follows its empty line (reset() empties the head).
    if (typeof f === 'string') return this.failHead(f);
    this.head.clear();

    if (method === 'CONNECT' || (f.conn & CONN_UPGRADE && f.upgrade)) {
      this.h2c = method !== 'CONNECT' && this.events.onH2cUpgrade !== undefined && this.drops.muted === null && asksH2c(f.headers);
      if (!this.h2c) return this.startSwitch(method === 'CONNECT', f.cl > 0 || f.te !== null);
    }
    const t = this.reqTarget;
    if (!originForm(method, target, t)) return this.failHead('http_malformed');
    // RFC 9112 §6.1/6.3: TE with CL, TE on HTTP/1.0, a final coding other than chunked, or an
    // invalid Content-Length leave the body length to guesswork.
    const minor = this.line.minor;
    const framing = requestFraming(minor, f.te, f.badLength ? -2 : f.cl);
    if (framing === BODY_INVALID) return this.failHead('http_ambiguous_framing');

    this.method = method;
    this.target = t.target;
    this.authority = t.authority;
    this.headers = f.headers;
    this.trailers = [];
    // RFC 9112 §9.3: the last request of its connection.
    this.closeAfter = (f.conn & CONN_CLOSE) !== 0 || (minor === 0 && (f.conn & CONN_KEEP_ALIVE) === 0);
    if (this.drops.muted !== null) {
      // Counted, not replayed: skip its body by its framing to find the next one.
      this.drop(this.drops.muted, this.reqBytes);
      this.startDiscard(this.drops.muted);
    }
    this.setupBody(framing === BODY_CHUNKED, f.cl, f.expect);
  }

  private setupBody(chunked: boolean, cl: number, expect: boolean): void {
    if (chunked) {
      this.chunked = true;
      this.state = CHUNK_SIZE;
      this.expectWaiting = expect && !this.discarding;
    } else if (cl > 0) {
      this.remaining = cl;
      this.state = BODY;
      if (this.discarding) return;
      if (cl > this.limits.maxBodyBytes) {
        // Stay in sync: skip exactly the declared body.
        this.drop('http_body_too_large', this.reqBytes);
        this.startDiscard('http_body_too_large');
      } else {
        this.expectWaiting = expect;
      }
    } else {
      this.finish();
    }
  }

  /**
   * CONNECT or Upgrade: if the server answers 2xx (CONNECT) or 101 (Upgrade), the rest of the connection is not HTTP/1.1.
   * The request itself is not replayed either way. When the capture carries the server's side, the client bytes that
   * follow are held until its answer is seen; otherwise the switch is assumed.
   */
  private startSwitch(connect: boolean, hasBody: boolean): void {
    this.drop('http_upgrade', this.reqBytes);
    if (this.drops.muted !== null || !this.peerVisible || hasBody) {
      this.drops.mute('http_upgrade');
      this.reset(LINE, false);
      return;
    }
    this.reset(VERDICT, false);
    this.verdict = new SwitchVerdict(connect);
  }

  /** State VERDICT: hold client bytes (bounded) until the server's answer is known. */
  private onHeld(d: Buffer, p: number): number {
    if (this.verdict!.hold(d, p)) return d.length;
    // Too much to hold: the client is not waiting for an answer, so it was a switch.
    this.decideSwitch('switched');
    return p;
  }

  /** The answer to a CONNECT/Upgrade is known (or given up): parse or count the held bytes. */
  private decideSwitch(v: 'switched' | 'stayed'): void {
    const { held, heldLen } = this.verdict!;
    this.verdict = null;
    if (v === 'switched') this.drops.mute('http_upgrade');
    this.reset(LINE, v === 'stayed');
    if (held !== null && heldLen > 0) this.push(held, 0, heldLen);
  }

  /** Refuse the request whose head is complete; only count what follows its empty line. */
  private failHead(reason: HttpDropReason): void {
    this.refuse(reason);
    this.reset(LINE, false);
  }

  /**
   * Framing error inside a body: drop the request (unless already dropped). The server refused it too, so the rest is
   * only counted; unless we were skipping past a gap of our own, where the server may have read fine: resync then.
   */
  private failBody(reason: HttpDropReason, d: Buffer, pos: number): number {
    if (!this.discarding) this.refuse(reason);
    else if (!GAP_REASONS.has(this.discardReason)) this.drops.mute('http_after_refused');
    this.reset(this.lineStartAt(d, pos) ? LINE : SEEK, false);
    return pos;
  }

  /** Refused (by the server, or we could not read it as it did): framing is unknown from here, a server closes after a 400 (RFC 9112 §9.6); the rest is only counted. */
  private refuse(reason: HttpDropReason): void {
    this.drop(reason, this.reqBytes);
    this.drops.mute('http_after_refused');
  }

  /** The HTTP/2 preface: a lost request, unless inside bytes already only counted (an h2c upgrade). */
  private preface(): void {
    if (this.drops.muted !== null) this.drops.skip(this.drops.muted, this.reqBytes);
    else this.drop('http2_preface', this.reqBytes);
    this.drops.mute('http2_preface');
  }

  /** A message's framing ended: the next one starts here, unless it was the connection's last. */
  private messageEnd(): void {
    const close = this.closeAfter;
    if (close) this.drops.mute('http_after_close');
    // After a clean close the framing is still known: count the next requests exactly.
    this.reset(LINE, this.drops.muted === null || this.drops.muted === 'http_after_close');
  }

  /** Does stream position `pos` of the current push follow a CRLF? */
  private lineStartAt(d: Buffer, pos: number): boolean {
    const b1 = pos >= 1 ? d[pos - 1] : this.lastByte;
    const b2 = pos >= 2 ? d[pos - 2] : pos === 1 ? this.lastByte : this.lastByte2;
    return b2 === CR && b1 === LF;
  }

  // ---- body and emission ----

  private bodyPiece(d: Buffer, p: number, n: number): void {
    if (this.discarding) {
      this.drops.skip(this.discardReason, n);
      return;
    }
    this.reqBytes += n;
    if (n > 0) this.body.add(d, p, n);
  }

  /** The request's framing ended: emit it, or end the skip of an already-dropped one. */
  private finish(): void {
    if (this.discarding) {
      this.messageEnd();
      return;
    }
    this.drops.emitted(this.reqBytes);
    const req: HttpRequest = {
      method: this.method,
      target: this.target,
      minorVersion: this.line.minor,
      headers: this.headers,
      body: this.body.whole(),
      chunked: this.chunked,
      trailers: this.trailers,
    };
    if (this.authority !== undefined) req.authority = this.authority;
    if (this.h2c) {
      this.drops.flush();
      this.handed = req;
      this.reset(CLOSED, false);
      return;
    }
    this.messageEnd();
    this.drops.flush();
    this.events.onRequest(req);
  }

  private handOff(d: Buffer, p: number): void {
    const req = this.handed!;
    this.handed = null;
    this.events.onH2cUpgrade!(req, d, p, d.length - p);
  }

  private startDiscard(reason: HttpDropReason): void {
    this.discarding = true;
    this.discardReason = reason;
    this.body.clear();
  }

  private count(n: number): void {
    if (this.discarding) this.drops.skip(this.discardReason, n);
    else this.reqBytes += n;
  }

  private reset(state: number, strict: boolean): void {
    this.state = state;
    this.strict = strict;
    this.line.reset();
    this.head.clear();
    this.lines.len = 0;
    this.reqBytes = 0;
    this.reqStarted = false;
    this.discarding = false;
    this.expectWaiting = false;
    this.closeAfter = false;
    this.h2c = false;
    this.authority = undefined;
    this.chunked = false;
    this.remaining = 0;
    this.body.clear();
    this.headers = NO_FIELDS;
    this.trailers = NO_FIELDS;
  }

  /** End of a push: copy body views out of the caller's buffer, report skipped bytes. */
  private settle(): void {
    this.body.own();
    this.drops.flush();
  }

  /** Report `requests` lost, `bytes` of them seen; the current request's bytes are accounted for. */
  private drop(reason: HttpDropReason, bytes: number, requests = 1): void {
    this.reqBytes = 0;
    this.drops.drop(reason, bytes, requests);
  }
}

