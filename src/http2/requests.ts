/**
 * HTTP/2 requests from the client-to-server bytes of a connection after its preface (RFC 9113):
 * each stream the client ends (END_STREAM) becomes one HttpRequest with `h2` set, as
 * src/http/types.ts describes; streams interleave, so several are built at once.
 *
 * Rules (the reasons are in HTTP_DROP_REASONS):
 * - A request is emitted only whole: HEADERS (+ CONTINUATION), its DATA, and trailers (a second
 *   HEADERS block, which must carry END_STREAM). Never a part of one.
 * - A malformed request (§8.3: pseudo-fields missing, repeated, after regular fields or unknown;
 *   upper-case or connection-specific field names; Content-Length not matching the DATA) is a
 *   stream error a server answers with RST_STREAM: http_malformed, that stream only. CONNECT (and
 *   extended CONNECT) is http_upgrade, as in HTTP/1.1.
 * - Over HttpParserLimits: a header list over maxHeaderBytes (or maxHeaderCount fields) is
 *   http_headers_too_large, a body over maxBodyBytes http_body_too_large; the stream's later bytes
 *   are skipped, the connection goes on (its header state is intact). More than MAX_OPEN_STREAMS
 *   open streams, or more body bytes held across streams than twice maxBodyBytes: the new (or
 *   biggest) stream is http2_stream_limit.
 * - RST_STREAM from the client on an open stream: http2_stream_reset.
 * - Header state lost (conn.ts): an HPACK error, a TCP gap or taint outside a DATA payload, a
 *   protocol error: the streams open then are dropped under that reason, and so is every later
 *   stream whose HEADERS can still be framed; other bytes are counted as skipped. After a gap,
 *   framing is found again with findFrameChain (frames.ts) in the next 8 KiB, so later requests
 *   are counted one by one. A gap inside a DATA payload loses only that stream (stream_gap…);
 *   framing and header state go on.
 * - The connection ends with streams open: http2_incomplete, each.
 * - With `upgrade` (h2c, RFC 7540 §3.2), the HTTP/1.1 request that asked for the upgrade is
 *   stream 1, half-closed by the client: it is emitted once the client's first frame (SETTINGS,
 *   §3.4) shows the connection really is HTTP/2; a first frame of another type is http2_preface.
 *
 * Byte accounting: frame headers and connection frames (SETTINGS, PING, WINDOW_UPDATE, …) are
 * protocol overhead, counted nowhere; DATA bytes of dropped streams and bytes after the framing is
 * lost are skipped bytes under the stream's (or the connection's) reason.
 */
import { DropLedger } from '../http/drops.js';
import type { HttpDropReason, HttpParserEvents, HttpParserLimits, HttpRequest } from '../http/types.js';
import type { GapCause, StreamSink, TaintCause } from '../reassemble/stream.js';
import { H2Conn, type LostCause } from './conn.js';
import { findFrameChain, type FrameError, type FrameHeader, SETTINGS } from './frames.js';
import type { DecodedBlock } from './hpack.js';
import { requestHead, type RequestHead } from './fields.js';

/** Open streams one connection may have; servers advertise 100–1000 (SETTINGS_MAX_CONCURRENT_STREAMS). */
export const MAX_OPEN_STREAMS = 1000;
/** How far after a gap framing is looked for. */
const RESYNC_WINDOW = 8 * 1024;

interface OpenStream {
  head: RequestHead | null;
  /** Body pieces (owned copies) and their length. */
  body: Buffer[];
  bodyLen: number;
  /** Dropped already: its remaining frames are skipped. */
  dropped: HttpDropReason | null;
}

export interface H2RequestOptions {
  /** The h2c upgrade request: stream 1's request (see the file header). */
  upgrade?: HttpRequest;
  /**
   * The connection was picked up midstream and the bytes start at a frame boundary (switch.ts
   * found one): nothing can be decoded; each client stream the frames show (opened before the
   * pickup or after it) is counted once as http2_midstream.
   */
  midstream?: boolean;
}

export class H2RequestReader extends H2Conn implements StreamSink {
  private readonly streams = new Map<number, OpenStream>();
  /** Midstream: streams opened before the pickup, already counted. */
  private readonly seenInFlight = new Set<number>();
  private highestStream = 0;
  private bodyHeld = 0;
  private readonly drops: DropLedger;
  private pushed = 0;
  /** The first frame is still to come (it must be SETTINGS). */
  private first = true;
  private upgrade: HttpRequest | null;
  private closed = false;
  /** After a gap: bytes searched for a frame boundary (null when not searching). */
  private resync: Buffer | null = null;
  private resyncLen = 0;
  /** Bytes already searched in vain since the gap. */
  private resyncSeen = 0;

  constructor(
    private readonly events: HttpParserEvents,
    private readonly reqLimits: HttpParserLimits,
    opts: H2RequestOptions = {},
  ) {
    super({ maxHeaderBytes: reqLimits.maxHeaderBytes });
    this.drops = new DropLedger(events);
    this.upgrade = opts.upgrade ?? null;
    // Stream 1 is the upgrade request's, already half-closed by the client.
    if (this.upgrade !== null) this.highestStream = 1;
    if (opts.midstream) {
      this.first = false;
      this.lost = 'midstream';
      this.drops.mute('http2_midstream');
    }
  }

  get bufferedBytes(): number {
    return this.connBufferedBytes + this.bodyHeld + this.resyncLen * (this.resync !== null ? 1 : 0);
  }

  /** Every byte so far shaped the header state: all of them are "in progress" (reassembly caps what it keeps). */
  get pendingBytes(): number {
    return this.closed || this.lost !== null ? 0 : this.pushed;
  }

  /** Streams open now. */
  get openStreams(): number {
    return this.streams.size;
  }

  push(buf: Uint8Array, off: number, len: number): void {
    if (len <= 0 || this.closed) return;
    this.pushed = Math.min(this.pushed + len, 0x40000000);
    if (this.resync !== null) {
      this.findFrames(buf, off, len);
    } else if (this.frames.failed) {
      this.drops.skip(this.drops.muted ?? 'http2_protocol_error', len);
    } else {
      const d = Buffer.from(buf.buffer, buf.byteOffset + off, len);
      const q = this.frames.push(d, 0, len);
      if (q < len) this.drops.skip(this.drops.muted ?? 'http2_protocol_error', len - q);
    }
    this.drops.flush();
  }

  gap(bytes: number, cause: GapCause = 'lost'): void {
    if (bytes <= 0 || this.closed) return;
    if (this.resync !== null) {
      // Searching for frames again: start over after this hole.
      this.drops.skip(this.drops.muted ?? 'stream_gap', this.resyncLen);
      this.resync = Buffer.allocUnsafe(0);
      this.resyncLen = 0;
      this.drops.flush();
      return;
    }
    if (this.frames.failed) return;
    const before = this.streams.size;
    this.hole(bytes, cause, (id) => this.dropStream(id, this.reasonFor('gap')));
    // A hole between requests (nothing open) held at least one; how many cannot be told from its size.
    if (this.lost === 'gap' && before === 0) this.drops.drop(this.reasonFor('gap'), 0);
    if (this.frames.failed && this.lost === 'gap') {
      this.resync = Buffer.allocUnsafe(0);
      this.resyncLen = 0;
      this.resyncSeen = 0;
    }
    this.drops.flush();
  }

  taint(_cause: TaintCause): void {
    if (this.closed) return;
    // The bytes of any open stream, or the header state itself, may differ from the server's.
    const between = this.streams.size === 0 && this.lost === null;
    this.lose('taint');
    if (between) {
      // As in HTTP/1.1: the next request is the ambiguous one, counted now.
      this.drops.drop('stream_overlap_conflict', 0);
      this.drops.precounted = true;
    }
    this.drops.flush();
  }

  stalled(): void {}

  /** After a gap: look for frames again in the next RESYNC_WINDOW bytes; bytes before them are skipped. */
  private findFrames(buf: Uint8Array, off: number, len: number): void {
    const n = Math.min(len, RESYNC_WINDOW - this.resyncLen);
    const grown = Buffer.allocUnsafe(this.resyncLen + n);
    this.resync!.copy(grown, 0, 0, this.resyncLen);
    grown.set(buf.subarray(off, off + n), this.resyncLen);
    this.resync = grown;
    this.resyncLen += n;
    const at = findFrameChain(grown, 0, this.resyncLen, RESYNC_WINDOW);
    const reason = this.drops.muted ?? 'stream_gap';
    if (at < 0) {
      this.resyncSeen += at === -1 ? this.resyncLen : 0;
      if (this.resyncSeen + this.resyncLen >= RESYNC_WINDOW) {
        this.resync = null;
        this.drops.skip(reason, this.resyncLen + len - n);
      } else if (at === -1) {
        // No frame starts in these bytes: drop them, keep looking in the next ones.
        this.drops.skip(reason, this.resyncLen);
        this.resync = Buffer.allocUnsafe(0);
        this.resyncLen = 0;
      }
      return;
    }
    this.resync = null;
    this.drops.skip(reason, at);
    this.frames.restart();
    const rest = Buffer.concat([grown.subarray(at), Buffer.from(buf.subarray(off + n, off + len))]);
    const q = this.frames.push(rest, 0, rest.length);
    if (q < rest.length) this.drops.skip(this.drops.muted ?? 'http2_protocol_error', rest.length - q);
  }

  end(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.resync !== null) this.drops.skip(this.drops.muted ?? 'stream_gap', this.resyncLen);
    this.resync = null;
    for (const id of [...this.streams.keys()]) this.dropStream(id, 'http2_incomplete');
    if (this.upgrade !== null) this.dropUpgrade('http2_incomplete');
    this.frames.stop();
    this.drops.flush();
  }

  // ---- the first frame ----

  override frame(h: FrameHeader, p: Buffer, s: number, e: number): void {
    if (this.first && !this.firstFrame(h)) return;
    super.frame(h, p, s, e);
  }

  override data(h: FrameHeader, b: Buffer, s: number, e: number): void {
    if (this.first && !this.firstFrame(h)) return;
    super.data(h, b, s, e);
  }

  /** §3.4: the preface ends with a SETTINGS frame; anything else means this is not HTTP/2. */
  private firstFrame(h: FrameHeader): boolean {
    this.first = false;
    if (h.type === SETTINGS) {
      if (this.upgrade !== null) this.emitUpgrade();
      return true;
    }
    this.notHttp2('first_frame_not_settings');
    return false;
  }

  override frameError(e: FrameError): void {
    if (!this.first) return super.frameError(e);
    this.first = false;
    this.notHttp2(e);
  }

  /** Not HTTP/2 after all (the preface's first frame is not a SETTINGS frame): counted once, as HTTP/1.x counts a bad preface. */
  private notHttp2(err: string): void {
    this.drops.mute('http2_preface');
    if (this.upgrade === null) this.drops.drop('http2_preface', 0);
    this.protocolError(err);
  }

  private emitUpgrade(): void {
    const req = this.upgrade!;
    this.upgrade = null;
    this.drops.emitted(req.body.length + 1);
    this.events.onRequest(req);
  }

  private dropUpgrade(reason: HttpDropReason): void {
    this.upgrade = null;
    this.drops.drop(reason, 0);
  }

  // ---- H2Conn ----

  protected headerBlock(id: number, b: DecodedBlock, endStream: boolean, promised: number): void {
    if (promised !== 0) return this.protocolError('client_push_promise');
    const st = this.streams.get(id);
    if (st !== undefined) return this.trailers(id, st, b.fields, endStream);
    if (!this.newStream(id)) return;
    const head = requestHead(b.fields, this.reqLimits.maxHeaderCount);
    if (typeof head === 'string') return this.refuseNew(id, head, endStream);
    const s: OpenStream = { head, body: [], bodyLen: 0, dropped: null };
    this.streams.set(id, s);
    if (this.streams.size > MAX_OPEN_STREAMS) return this.dropStream(id, 'http2_stream_limit');
    if (head.contentLength > this.reqLimits.maxBodyBytes) this.dropStream(id, 'http_body_too_large');
    if (endStream) this.complete(id, s, []);
  }

  /** A second block on an open stream: trailers, which must end it (§8.1). */
  private trailers(id: number, st: OpenStream, fields: string[], endStream: boolean): void {
    if (st.dropped !== null) {
      if (endStream) this.streams.delete(id);
      return;
    }
    if (!endStream || fields.some((f, i) => i % 2 === 0 && f.charCodeAt(0) === 58)) return this.dropStream(id, 'http_malformed', !endStream);
    this.complete(id, st, fields);
  }

  /** A client stream id must be odd and above every earlier one (§5.1.1). */
  private newStream(id: number): boolean {
    if ((id & 1) === 0 || id <= this.highestStream) {
      // Picked up midstream or after a gap, a block on a stream opened before is no error.
      if (this.lost === 'midstream') this.inFlight(id);
      else if (this.lost !== 'gap') this.protocolError('stream_id');
      return false;
    }
    this.highestStream = id;
    return true;
  }

  /** A new stream refused at its head: dropped, and kept open (skipped) until it ends. */
  private refuseNew(id: number, reason: HttpDropReason, endStream: boolean): void {
    this.drops.drop(reason, 0);
    if (!endStream) this.streams.set(id, { head: null, body: [], bodyLen: 0, dropped: reason });
  }

  protected undecodable(id: number, endStream: boolean, cause: LostCause, promised: number): void {
    if (promised !== 0) return;
    const st = this.streams.get(id);
    if (st !== undefined) {
      // Trailers we cannot read: the stream is lost.
      this.dropStream(id, cause === 'too_large' && this.lost === null ? 'http_headers_too_large' : this.reasonFor(cause), !endStream);
      return;
    }
    if (!this.newStream(id)) return;
    const reason = cause === 'too_large' && this.lost === null ? 'http_headers_too_large' : this.reasonFor(cause);
    this.refuseNew(id, reason, endStream);
  }

  protected dataPiece(id: number, b: Buffer, s: number, e: number): void {
    const st = this.streams.get(id);
    if (st === undefined || st.dropped !== null) {
      if (st === undefined && this.lost === 'midstream') this.inFlight(id);
      this.drops.skip(st?.dropped ?? this.drops.muted ?? 'http2_protocol_error', e - s);
      if (st === undefined && id > this.highestStream && this.lost !== 'midstream' && this.lost !== 'gap') this.protocolError('data_on_idle_stream');
      return;
    }
    const n = e - s;
    if (st.bodyLen + n > this.reqLimits.maxBodyBytes) return this.dropStream(id, 'http_body_too_large');
    st.body.push(Buffer.from(b.subarray(s, e)));
    st.bodyLen += n;
    this.bodyHeld += n;
    if (this.bodyHeld > 2 * this.reqLimits.maxBodyBytes) this.dropBiggest();
  }

  protected endStream(id: number): void {
    const st = this.streams.get(id);
    if (st === undefined) {
      if (this.lost === 'midstream') this.inFlight(id);
      return;
    }
    if (st.dropped !== null) {
      this.streams.delete(id);
      return;
    }
    this.complete(id, st, []);
  }

  protected reset(id: number): void {
    const st = this.streams.get(id);
    if (st === undefined) {
      if (this.lost === 'midstream') this.inFlight(id);
      return;
    }
    if (st.dropped !== null) this.streams.delete(id);
    else this.dropStream(id, 'http2_stream_reset', false);
  }

  protected connectionLost(cause: LostCause): void {
    const reason = this.reasonFor(cause);
    const open = this.streams.size + (this.upgrade !== null ? 1 : 0);
    if (this.upgrade !== null) this.dropUpgrade(reason);
    for (const id of [...this.streams.keys()]) this.dropStream(id, reason, false);
    // A broken frame with nothing open: it (or what follows, which the server never reads) held a request.
    if (cause === 'protocol' && open === 0 && this.drops.muted === null) this.drops.drop(reason, 0);
    this.drops.mute(reason);
  }

  // ---- streams ----

  /** Picked up midstream: a client stream opened before the pickup, counted once (http2_midstream). */
  private inFlight(id: number): void {
    if ((id & 1) === 0 || this.seenInFlight.has(id) || this.seenInFlight.size >= MAX_OPEN_STREAMS) return;
    this.seenInFlight.add(id);
    this.drops.drop('http2_midstream', 0);
  }

  /** Drop an open stream (counted once); `keep`: its later frames are skipped until it ends. */
  private dropStream(id: number, reason: HttpDropReason, keep = true): void {
    const st = this.streams.get(id);
    if (st === undefined) return;
    if (st.dropped === null) {
      this.drops.drop(reason, st.bodyLen);
      this.bodyHeld -= st.bodyLen;
      st.body = [];
      st.bodyLen = 0;
      st.dropped = reason;
    }
    if (!keep) this.streams.delete(id);
  }

  private dropBiggest(): void {
    let big = 0;
    let most = -1;
    for (const [id, s] of this.streams) if (s.dropped === null && s.bodyLen > most) [big, most] = [id, s.bodyLen];
    if (big !== 0) this.dropStream(big, 'http2_stream_limit');
  }

  private complete(id: number, st: OpenStream, trailers: string[]): void {
    this.streams.delete(id);
    const h = st.head!;
    this.bodyHeld -= st.bodyLen;
    if (h.contentLength >= 0 && h.contentLength !== st.bodyLen) {
      this.drops.drop('http_malformed', st.bodyLen);
      return;
    }
    const req: HttpRequest = {
      method: h.method,
      target: h.path,
      minorVersion: 1,
      headers: h.headers,
      body: st.body.length === 1 ? st.body[0] : Buffer.concat(st.body, st.bodyLen),
      chunked: false,
      trailers,
      h2: { scheme: h.scheme, streamId: id },
    };
    if (h.authority !== undefined) req.authority = h.authority;
    this.drops.emitted(st.bodyLen + 1);
    this.drops.flush();
    this.events.onRequest(req);
  }
}
