/**
 * Production's side of one mirrored connection (its server-to-client bytes) for shadow testing:
 * HTTP/1.x answers through the reply framer, or HTTP/2 answers per stream.
 *
 * Which one is read from the server's first bytes, not guessed from the client's: an HTTP/2
 * server's first frame is SETTINGS (RFC 9113 §3.4), whose 9-byte header (length, type 4, flags
 * without ACK, stream 0) cannot begin `HTTP/1.x` or a TLS record; and the mirror may deliver the
 * server's SETTINGS before the client's preface, so waiting for the request side would stall
 * here. An HTTP/1.1 connection that switches (101 with `Upgrade: h2c`, RFC 7540 §3.2) hands the
 * bytes after the 101 to the HTTP/2 reader, and the upgraded request's answer is stream 1's.
 */
import type { ResponseDigest, ResponseLossReason, ResponseParserEvents } from '../http/response.js';
import { HttpResponseParser } from '../http/response.js';
import { TlsGuard } from '../http/tls.js';
import type { GapCause, StreamSink, TaintCause } from '../reassemble/stream.js';

/** Why an answer was lost, HTTP/1.x's reasons and HTTP/2's (mirror_replay_responses_lost_total). */
export const ANSWER_LOSS_REASONS = ['gap', 'malformed', 'head_too_large', 'overlap_conflict', 'incomplete', 'tls', 'stream_reset', 'http2_error'] as const;
export type AnswerLossReason = (typeof ANSWER_LOSS_REASONS)[number];

/** What production's HTTP/2 answers tell the connection (the HTTP/2 answer reader's events, adapted). */
export interface H2AnswerEvents {
  /** Stream `id` was answered whole (END_STREAM seen): :status, fields, body digest, trailers. */
  answer(id: number, d: ResponseDigest): void;
  /** Stream `id`'s answer will not come whole (reset by either side, or cut by the connection's end). */
  streamLost(id: number, reason: AnswerLossReason): void;
  /**
   * Nothing more can be read on this connection (a hole, a decoding error): every open stream is
   * lost. `midstream`: because it was picked up after its start (not counted as a loss).
   */
  connectionLost(reason: AnswerLossReason, midstream?: boolean): void;
}

/** Builds the HTTP/2 answer reader for one connection; `afterUpgrade`: it starts after a 101 (h2c). */
export type H2AnswerReaderFactory = (events: H2AnswerEvents, opts: { afterUpgrade: boolean; snippetBytes: number; captureJsonBytes: number }) => StreamSink;

/** The connection state the production side reports to (shadow.ts's Connection). */
export interface ProductionEvents extends ResponseParserEvents, H2AnswerEvents {
  /** The 101 just seen switched the connection to HTTP/2 (Upgrade: h2c). */
  readonly upgradedToH2: boolean;
  /** The server speaks HTTP/2 on this connection (its first frame was seen). */
  h2Detected(): void;
}

/** RFC 9113 §4.1: length (24 bits), type, flags, R + stream id (31 bits). */
const FRAME_HEADER = 9;
const SETTINGS = 0x4;
const ACK = 0x1;
const H = 0x48;

/** Is `b[0..9)` the header of a server's first SETTINGS frame? */
export function isServerPreface(b: Uint8Array): boolean {
  const length = (b[0] << 16) | (b[1] << 8) | b[2];
  const stream = ((b[5] & 0x7f) << 24) | (b[6] << 16) | (b[7] << 8) | b[8];
  return b[3] === SETTINGS && (b[4] & ACK) === 0 && stream === 0 && length % 6 === 0 && length <= 16384;
}

/** The production-side sink: sniffs the first bytes, then feeds HTTP/1.x or HTTP/2 answers to `conn`. */
export class ProductionSide implements StreamSink {
  private inner: StreamSink | null = null;
  private readonly head = Buffer.alloc(FRAME_HEADER);
  private headLen = 0;

  constructor(
    private readonly conn: ProductionEvents,
    private readonly midstream: boolean,
    private readonly opts: { snippetBytes: number; captureJsonBytes: number },
    private readonly h2: H2AnswerReaderFactory,
  ) {}

  get bufferedBytes(): number {
    return (this.inner?.bufferedBytes ?? 0) + this.headLen;
  }

  get pendingBytes(): number {
    return this.inner?.pendingBytes ?? this.headLen;
  }

  push(buf: Uint8Array, off: number, len: number): void {
    if (len <= 0) return;
    if (this.inner) return this.inner.push(buf, off, len);
    // The common case, HTTP/1.x, decides on the first byte and buffers nothing.
    if (this.headLen === 0 && buf[off] === H) {
      this.decide(false);
      return this.inner!.push(buf, off, len);
    }
    const take = Math.min(len, FRAME_HEADER - this.headLen);
    this.head.set(buf.subarray(off, off + take), this.headLen);
    this.headLen += take;
    if (this.headLen < FRAME_HEADER) return;
    this.decide(!this.midstream && isServerPreface(this.head));
    if (len > take) this.inner!.push(buf, off + take, len - take);
  }

  gap(bytes: number, cause?: GapCause): void {
    this.settle().gap(bytes, cause);
  }

  taint(cause: TaintCause): void {
    this.settle().taint(cause);
  }

  stalled(): void {}

  end(): void {
    this.settle().end();
  }

  /** Something other than bytes came before the decision: HTTP/1.x's parser judges what there is. */
  private settle(): StreamSink {
    if (!this.inner) this.decide(false);
    return this.inner!;
  }

  /** Picks the reader and hands it the bytes held for the decision. */
  private decide(h2: boolean): void {
    if (h2) {
      this.conn.h2Detected();
      this.inner = this.h2(this.conn, { afterUpgrade: false, ...this.opts });
    } else {
      this.inner = this.http1();
    }
    const n = this.headLen;
    this.headLen = 0;
    if (n > 0) this.inner.push(Buffer.from(this.head.subarray(0, n)), 0, n);
  }

  private http1(): StreamSink {
    const conn = this.conn;
    let parser: HttpResponseParser;
    const events: ResponseParserEvents = {
      requestMethod: () => conn.requestMethod(),
      onResponse: (d) => conn.onResponse(d),
      onLost: (reason: ResponseLossReason, inSync: boolean) => conn.onLost(reason, inSync),
      onTunnel: () => {
        if (conn.upgradedToH2) parser.tunnel = this.h2(conn, { afterUpgrade: true, ...this.opts });
        else conn.onTunnel?.();
      },
    };
    parser = new HttpResponseParser(events, this.opts);
    // Production's side of a TLS connection (a ServerHello) is lost as `tls`, not `malformed`.
    return new TlsGuard(parser, this.midstream, (requests) => {
      if (requests > 0) conn.onLost('tls', false);
    });
  }
}
