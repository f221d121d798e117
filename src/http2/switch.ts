/**
 * HTTP/1.x or HTTP/2: the client-to-server sink of a connection, which starts as either.
 *
 * - Prior knowledge (RFC 9113 §3.3): a connection whose first bytes are the 24-byte preface
 *   `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n` is HTTP/2 from there: its frames go to H2RequestReader.
 *   Up to 24 bytes are held while they match the preface; at the first byte that does not, they
 *   go to the HTTP/1.x parser, which counts a `PRI *` of another shape as http2_preface.
 * - h2c upgrade (RFC 7540 §3.2): the HTTP/1.1 parser hands over a complete request carrying
 *   `Upgrade: h2c` (HttpParserEvents.onH2cUpgrade). A client sends the preface only after the
 *   server's 101, so the next client bytes decide, with no need to see the server's side: the
 *   preface → HTTP/2, the upgrade request being stream 1's request (as an HTTP/2 request: Host
 *   becomes :authority, Connection, Upgrade and HTTP2-Settings go); anything else → the server
 *   stayed in HTTP/1.1, the upgrade request is http_upgrade (as before) and a fresh HTTP/1.1 parser
 *   reads the rest.
 * - A connection picked up midstream goes to the HTTP/1.x parser as before, and its first 8 KiB are
 *   also searched for a run of HTTP/2 frames (findFrameChain: three back to back, with the sizes,
 *   flags and streams RFC 9113 allows). Found: the connection is HTTP/2 whose header state is
 *   unknown; the HTTP/1.x parser (which counted the bytes so far as http_midstream_skipped) is
 *   left, and an H2RequestReader in midstream mode follows the frames, counting each client stream
 *   they show (in flight at the pickup, or opened after it) once as http2_midstream.
 */
import { GAP_REASON } from '../http/drops.js';
import { HttpRequestParser } from '../http/parser.js';
import type { HttpParserEvents, HttpParserLimits, HttpRequest } from '../http/types.js';
import type { GapCause, StreamSink, TaintCause } from '../reassemble/stream.js';
import { findFrameChain, PREFACE } from './frames.js';
import { H2RequestReader } from './requests.js';

const SNIFF = 0; // connection start: is it the preface?
const H1 = 1;
const AFTER_UPGRADE = 2; // an h2c upgrade request was handed over: is the preface next?
const H2 = 3;

/** How much of a midstream connection's start is searched for HTTP/2 frames. */
const MIDSTREAM_SNIFF = 8 * 1024;

/** HTTP/1.1 fields that say nothing in HTTP/2 (RFC 9113 §8.2.2), and those the upgrade itself used. */
const NOT_IN_H2 = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'host']);

/** The HTTP/1.1 upgrade request as stream 1's HTTP/2 request. */
export function upgradeAsH2(req: HttpRequest): HttpRequest {
  const headers: string[] = [];
  let host: string | undefined;
  for (let i = 0; i < req.headers.length; i += 2) {
    const n = req.headers[i].toLowerCase();
    if (n === 'host' && host === undefined) host = req.headers[i + 1];
    if (NOT_IN_H2.has(n) || (n === 'te' && req.headers[i + 1].toLowerCase() !== 'trailers')) continue;
    headers.push(n, req.headers[i + 1]);
  }
  const trailers: string[] = [];
  for (let i = 0; i < req.trailers.length; i += 2) trailers.push(req.trailers[i].toLowerCase(), req.trailers[i + 1]);
  const out: HttpRequest = {
    method: req.method,
    target: req.target,
    minorVersion: 1,
    headers,
    body: req.body,
    chunked: false,
    trailers,
    h2: { scheme: 'http', streamId: 1 },
  };
  const authority = req.authority ?? host;
  if (authority !== undefined) out.authority = authority;
  return out;
}

/** How a connection became HTTP/2 (Http1Or2's onHttp2). */
export type Http2Start = 'prior_knowledge' | 'upgrade' | 'midstream';

export class Http1Or2 implements StreamSink {
  private mode: number;
  private http1: HttpRequestParser;
  private h2: H2RequestReader | null = null;
  /** Bytes matching the preface so far (held: they are PREFACE's first heldLen bytes, no copy per connection). */
  private heldLen = 0;
  /** AFTER_UPGRADE: stream 1's request. */
  private upgrade: HttpRequest | null = null;
  private peerSeen = false;
  /** A midstream connection's first bytes, while they are searched for HTTP/2 frames. */
  private mid: Buffer | null = null;
  private midLen = 0;

  constructor(
    private readonly events: HttpParserEvents,
    private readonly limits: HttpParserLimits,
    midstream: boolean,
    /** Told once when the connection turns out to be HTTP/2 (shadow testing then reads answers with H2AnswerReader). */
    private readonly onHttp2?: (how: Http2Start) => void,
  ) {
    this.http1 = this.parser(midstream);
    this.mode = midstream ? H1 : SNIFF;
    if (midstream) this.mid = Buffer.allocUnsafe(0);
  }

  /** The HTTP/2 reader, once the connection is HTTP/2 (for tests and logs). */
  get http2(): H2RequestReader | null {
    return this.h2;
  }

  private parser(midstream: boolean): HttpRequestParser {
    const p = new HttpRequestParser({
      onRequest: (r) => {
        // A request line was found: HTTP/1.x, no need to look for frames.
        this.mid = null;
        this.events.onRequest(r);
      },
      onDrop: (reason, n, bytes) => this.events.onDrop(reason, n, bytes),
      onH2cUpgrade: (req, rest, off, len) => this.upgraded(req, rest, off, len),
    }, this.limits, { midstream });
    if (this.peerSeen) p.peer(Buffer.alloc(0), 0, 0);
    return p;
  }

  private upgraded(req: HttpRequest, rest: Uint8Array, off: number, len: number): void {
    this.mode = AFTER_UPGRADE;
    this.upgrade = upgradeAsH2(req);
    this.heldLen = 0;
    if (len > 0) this.sniff(rest, off, len);
  }

  push(buf: Uint8Array, off: number, len: number): void {
    if (len <= 0) return;
    switch (this.mode) {
      case H1:
        if (this.mid !== null && this.midstreamH2(buf, off, len)) return;
        this.http1.push(buf, off, len);
        break;
      case H2: this.h2!.push(buf, off, len); break;
      default: this.sniff(buf, off, len);
    }
  }

  /** A midstream connection: are its first bytes HTTP/2 frames? If so, follow them from here (true). */
  private midstreamH2(buf: Uint8Array, off: number, len: number): boolean {
    let mid = this.mid!;
    const n = Math.min(len, MIDSTREAM_SNIFF - this.midLen);
    if (mid.length < this.midLen + n) {
      // Grown as bytes come: thousands of flows are picked up midstream at start.
      const grown = Buffer.allocUnsafe(Math.min(MIDSTREAM_SNIFF, Math.max(2 * mid.length, this.midLen + n)));
      mid.copy(grown, 0, 0, this.midLen);
      this.mid = mid = grown;
    }
    mid.set(buf.subarray(off, off + n), this.midLen);
    this.midLen += n;
    const at = findFrameChain(mid, 0, this.midLen, MIDSTREAM_SNIFF);
    if (at < 0) {
      if (this.midLen === MIDSTREAM_SNIFF) this.mid = null;
      return false;
    }
    this.mid = null;
    const h2 = new H2RequestReader(this.events, this.limits, { midstream: true });
    this.h2 = h2;
    this.mode = H2;
    this.onHttp2?.('midstream');
    // Framing goes on at `at`: in bytes the HTTP/1.x parser already had (and counted as skipped), or in this push.
    const prev = this.midLen - n;
    if (at <= prev) {
      if (prev > at) h2.push(mid, at, prev - at);
      h2.push(buf, off, len);
    } else {
      this.http1.push(buf, off, at - prev);
      if (len > at - prev) h2.push(buf, off + at - prev, len - (at - prev));
    }
    return true;
  }

  /** SNIFF / AFTER_UPGRADE: compare with the preface; decide at its last byte or the first that differs. */
  private sniff(buf: Uint8Array, off: number, len: number): void {
    const n = Math.min(PREFACE.length - this.heldLen, len);
    for (let i = 0; i < n; i++) {
      if (buf[off + i] !== PREFACE[this.heldLen + i]) return this.notH2(buf, off, len);
    }
    this.heldLen += n;
    if (this.heldLen < PREFACE.length) return;
    this.h2 = new H2RequestReader(this.events, this.limits, { upgrade: this.upgrade ?? undefined });
    this.onHttp2?.(this.upgrade !== null ? 'upgrade' : 'prior_knowledge');
    this.upgrade = null;
    this.heldLen = 0;
    this.mode = H2;
    if (len > n) this.h2.push(buf, off + n, len - n);
  }

  /** Not the preface: HTTP/1.x reads the held bytes and what follows. */
  private notH2(buf: Uint8Array | null, off: number, len: number): void {
    if (this.mode === AFTER_UPGRADE) this.stayed('http_upgrade');
    this.mode = H1;
    const n = this.heldLen;
    this.heldLen = 0;
    if (n > 0) this.http1.push(Buffer.from(PREFACE.subarray(0, n)), 0, n);
    if (buf !== null && len > 0) this.http1.push(buf, off, len);
  }

  /** The upgrade did not happen (or cannot be followed): its request is counted, a new parser goes on. */
  private stayed(reason: Parameters<HttpParserEvents['onDrop']>[0]): void {
    this.upgrade = null;
    this.events.onDrop(reason, 1, 0);
    this.http1 = this.parser(false);
  }

  gap(bytes: number, cause: GapCause = 'lost'): void {
    if (this.mode === H2) return this.h2!.gap(bytes, cause);
    this.mid = null;
    if (this.mode === AFTER_UPGRADE) this.stayed(GAP_REASON[cause]);
    if (this.mode !== H1) this.notH2(null, 0, 0);
    this.http1.gap(bytes, cause);
  }

  taint(cause: TaintCause): void {
    if (this.mode === H2) return this.h2!.taint(cause);
    if (this.mode === AFTER_UPGRADE) this.stayed('stream_overlap_conflict');
    if (this.mode !== H1) this.notH2(null, 0, 0);
    this.http1.taint(cause);
  }

  stalled(): void {
    if (this.mode === H2) this.h2!.stalled();
    else if (this.mode === H1) this.http1.stalled();
  }

  end(): void {
    if (this.mode === H2) return this.h2!.end();
    if (this.mode !== H1) this.notH2(null, 0, 0);
    this.http1.end();
  }

  peer(buf: Uint8Array, off: number, len: number): void {
    this.peerSeen = true;
    if (this.mode !== H2) this.http1.peer(buf, off, len);
  }

  get bufferedBytes(): number {
    return this.heldLen + (this.mid?.length ?? 0) + (this.mode === H2 ? this.h2!.bufferedBytes : this.http1.bufferedBytes);
  }

  get pendingBytes(): number {
    if (this.mode === H2) return this.h2!.pendingBytes;
    return this.heldLen + (this.mode === H1 ? this.http1.pendingBytes : 0);
  }
}
