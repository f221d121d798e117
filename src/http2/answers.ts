/**
 * Production's HTTP/2 answers, read from the server-to-client bytes of a connection, per stream:
 * for shadow testing, which pairs them with requests by stream id (src/compare/).
 *
 * Feed it as a StreamSink (reassembly's to_client flow of an h2 connection). Events, in order per
 * stream (streams interleave):
 * - onHead(streamId, status, fields): the final response head: `:status` as a number and the
 *   regular fields, flat [name0, value0, …], lower-case names, wire order. Interim 1xx heads are
 *   skipped (RFC 9113 §8.1).
 * - onBody(streamId, b, start, end): a piece of the body, b[start..end), DATA padding removed;
 *   valid only during the call (copy or digest it there).
 * - onEnd(streamId, trailers): the stream ended (END_STREAM): trailers, flat like fields, are
 *   the trailing HEADERS block (where gRPC puts grpc-status, grpc-message), [] when none.
 * - onLost(streamId, reason): that stream's answer will not complete: the server reset it
 *   (http2_stream_reset), a hole fell in its body (stream_gap…), its head was over the limit
 *   (http_headers_too_large), or the connection ended first (http2_incomplete).
 *   onLost(null, reason): every stream open now, and every later one, is lost: the connection's
 *   header state is gone (http2_hpack_error, http2_protocol_error, stream_gap…, stream_overlap_conflict,
 *   http2_midstream). After it, heads of later streams are reported as onLost(streamId, reason)
 *   while framing can still be followed.
 * Only client-initiated (odd) streams are reported; pushed streams (PUSH_PROMISE) are decoded for
 * the header state and otherwise ignored.
 *
 * Which connections are HTTP/2 is decided on the server's side by shadow testing
 * (src/compare/production.ts): a first SETTINGS frame (prior knowledge), or a 101 to an h2c upgrade
 * (use `afterUpgrade`); the mirror may deliver the server's first bytes before the client's preface.
 *
 * Where the bytes start: at the server's first frame (prior knowledge: its SETTINGS), or, with
 * `afterUpgrade`, at the `HTTP/1.1 101` answer to an h2c upgrade, whose head is skipped; the
 * upgrade request's answer is then stream 1. With `midstream` (the connection was already open)
 * nothing can be decoded: onLost(null, 'http2_midstream') at the first byte.
 */
import { GAP_REASON } from '../http/drops.js';
import type { HttpDropReason, HttpParserLimits } from '../http/types.js';
import type { GapCause, StreamSink } from '../reassemble/stream.js';
import { H2Conn, type LostCause } from './conn.js';
import type { DecodedBlock } from './hpack.js';

export interface H2AnswerEvents {
  onHead(streamId: number, status: number, fields: string[]): void;
  onBody(streamId: number, b: Buffer, start: number, end: number): void;
  onEnd(streamId: number, trailers: string[]): void;
  onLost(streamId: number | null, reason: HttpDropReason): void;
}

export interface H2AnswerOptions {
  /** The bytes start with the HTTP/1.1 101 answer to an h2c upgrade. */
  afterUpgrade?: boolean;
  /** The connection was picked up after its start. */
  midstream?: boolean;
}

/** Longest HTTP/1.1 101 head skipped before the frames. */
const MAX_UPGRADE_HEAD = 16 * 1024;
const CRLFCRLF = 0x0d0a0d0a;

export class H2AnswerReader extends H2Conn implements StreamSink {
  /** Open client streams: true once their final head was reported. */
  private readonly open = new Map<number, boolean>();
  /** Bytes of the 101 head still to skip (-1: done), and the last four bytes seen. */
  private upgradeHead: number;
  private last4 = 0;
  private pushed = 0;
  /** Picked up midstream: reported at the first byte. */
  private midstream: boolean;

  constructor(
    private readonly events: H2AnswerEvents,
    limits: Pick<HttpParserLimits, 'maxHeaderBytes'>,
    opts: H2AnswerOptions = {},
  ) {
    super({ maxHeaderBytes: limits.maxHeaderBytes });
    this.upgradeHead = opts.afterUpgrade ? 0 : -1;
    this.midstream = opts.midstream === true;
    if (this.midstream) this.frames.stop();
  }

  get bufferedBytes(): number {
    return this.connBufferedBytes;
  }

  /** Every byte matters to the header state: what reassembly may keep to check overlaps. */
  get pendingBytes(): number {
    return this.pushed;
  }

  push(buf: Uint8Array, off: number, len: number): void {
    if (len <= 0) return;
    if (this.midstream) {
      this.midstream = false;
      this.events.onLost(null, 'http2_midstream');
    }
    this.pushed = Math.min(this.pushed + len, 0x40000000);
    const d = Buffer.from(buf.buffer, buf.byteOffset + off, len);
    let p = 0;
    if (this.upgradeHead >= 0) p = this.skipUpgradeHead(d);
    if (p < len) this.frames.push(d, p, len);
  }

  /** Skip the 101 head up to its empty line; returns where the frames start in d. */
  private skipUpgradeHead(d: Buffer): number {
    for (let i = 0; i < d.length; i++) {
      this.last4 = ((this.last4 << 8) | d[i]) >>> 0;
      if (this.last4 === CRLFCRLF) {
        this.upgradeHead = -1;
        // The upgrade request's answer comes on stream 1 (RFC 7540 §3.2).
        this.open.set(1, false);
        return i + 1;
      }
      if (++this.upgradeHead > MAX_UPGRADE_HEAD) {
        this.upgradeHead = -1;
        this.protocolError('upgrade_head_too_long');
        return d.length;
      }
    }
    return d.length;
  }

  gap(bytes: number, cause: GapCause = 'lost'): void {
    if (bytes <= 0) return;
    if (this.upgradeHead >= 0) {
      this.gapCause = cause;
      this.upgradeHead = -1;
      this.lose('gap');
      return;
    }
    this.hole(bytes, cause, (id) => this.lostStream(id, GAP_REASON[cause]));
  }

  taint(): void {
    this.lose('taint');
  }

  stalled(): void {}

  end(): void {
    for (const id of this.open.keys()) this.events.onLost(id, 'http2_incomplete');
    this.open.clear();
    this.frames.stop();
  }

  // ---- H2Conn ----

  protected headerBlock(id: number, b: DecodedBlock, endStream: boolean, promised: number): void {
    if (promised !== 0 || (id & 1) === 0) return;
    const f = b.fields;
    const headSeen = this.open.get(id);
    if (headSeen === true) {
      // Trailers (§8.1): a second block, which must end the stream.
      this.open.delete(id);
      if (endStream) this.events.onEnd(id, f);
      else this.events.onLost(id, 'http2_protocol_error');
      return;
    }
    const status = f[0] === ':status' ? Number(f[1]) : NaN;
    if (!(status >= 100 && status <= 999)) {
      this.lostStream(id, 'http_malformed');
      return;
    }
    if (status < 200) {
      // Interim head; the final one follows on the same stream.
      if (endStream) this.lostStream(id, 'http_malformed');
      else this.open.set(id, false);
      return;
    }
    this.open.set(id, true);
    this.events.onHead(id, status, f.slice(2));
    if (endStream) {
      this.open.delete(id);
      this.events.onEnd(id, []);
    }
  }

  protected undecodable(id: number, _endStream: boolean, cause: LostCause, promised: number): void {
    if (promised !== 0 || (id & 1) === 0) return;
    const reason = cause === 'too_large' && this.lost === null ? 'http_headers_too_large' : this.reasonFor(cause);
    this.open.delete(id);
    this.events.onLost(id, reason);
  }

  protected dataPiece(id: number, b: Buffer, s: number, e: number): void {
    if (this.open.get(id) === true) this.events.onBody(id, b, s, e);
  }

  protected endStream(id: number): void {
    if (this.open.get(id) !== true) return;
    this.open.delete(id);
    this.events.onEnd(id, []);
  }

  protected reset(id: number): void {
    this.lostStream(id, 'http2_stream_reset');
  }

  protected connectionLost(cause: LostCause): void {
    this.open.clear();
    this.events.onLost(null, this.reasonFor(cause));
  }

  private lostStream(id: number, reason: HttpDropReason): void {
    if (!this.open.has(id)) return;
    this.open.delete(id);
    this.events.onLost(id, reason);
  }
}
