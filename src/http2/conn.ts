/**
 * What both directions of an HTTP/2 connection share: frames (frames.ts) → header blocks
 * (HEADERS or PUSH_PROMISE plus CONTINUATION, §6.10) → HPACK (hpack.ts), SETTINGS, and the state
 * of the connection's header compression. The request reader (requests.ts) and the answer reader
 * (answers.ts) build on it and say what a decoded block, a DATA piece or a reset means for them.
 *
 * Once the header compression state is lost (an HPACK error, a header block too large to hold, a
 * TCP gap or a taint outside a DATA payload), no later header block of the connection can be
 * decoded: `lost` names why, and every later stream that opens is counted under it
 * (`undecodable`). Framing goes on where it is still known, so those streams can be counted one
 * by one.
 */
import {
  CONTINUATION,
  FLAG_ACK,
  FLAG_END_HEADERS,
  FLAG_END_STREAM,
  FrameReader,
  type FrameError,
  type FrameHeader,
  type FrameSink,
  fragmentBounds,
  GOAWAY,
  HEADERS,
  PUSH_PROMISE,
  RST_STREAM,
  SETTINGS,
  SETTINGS_HEADER_TABLE_SIZE,
} from './frames.js';
import { type DecodedBlock, HpackDecoder, type HpackError } from './hpack.js';
import { GAP_REASON } from '../http/drops.js';
import type { HttpDropReason } from '../http/types.js';
import type { GapCause } from '../reassemble/stream.js';

/** Why the connection's header state (or framing) is gone. */
export type LostCause = 'hpack' | 'protocol' | 'too_large' | 'gap' | 'taint' | 'midstream';

/** The drop reason for streams lost to `cause` (`gap`: what the hole was). */
export function lostReason(cause: LostCause, gap: GapCause = 'lost'): HttpDropReason {
  switch (cause) {
    case 'hpack': case 'too_large': return 'http2_hpack_error';
    case 'protocol': return 'http2_protocol_error';
    case 'gap': return GAP_REASON[gap];
    case 'midstream': return 'http2_midstream';
    default: return 'stream_overlap_conflict';
  }
}

export interface H2ConnLimits {
  /** Largest header block (compressed) and header list (decoded) kept: HttpParserLimits.maxHeaderBytes. */
  maxHeaderBytes: number;
  /** Largest frame accepted. */
  maxFrameSize?: number;
  /** Largest HPACK table size an encoder may set. */
  maxTableSize?: number;
}

export abstract class H2Conn implements FrameSink {
  protected readonly frames: FrameReader;
  protected readonly hpack: HpackDecoder;
  /** Why header blocks can no longer be decoded (null while they can). */
  lost: LostCause | null = null;
  /** The last error, for logs and tests (an HPACK or framing error name). */
  lastError: HpackError | FrameError | string | null = null;
  /** SETTINGS_HEADER_TABLE_SIZE this side advertised (it bounds the other side's encoder). */
  advertisedTableSize = 4096;
  /** What the last hole was, for the reason of what it lost. */
  protected gapCause: GapCause = 'lost';
  /** Highest stream id GOAWAY from this side named, or -1. */
  goawayLastStream = -1;

  /** The header block being collected: its stream (0: none), HEADERS' END_STREAM, promised id. */
  private blockStream = 0;
  private blockEnd = false;
  private blockType = HEADERS;
  private blockPromised = 0;
  private block: Buffer[] = [];
  private blockLen = 0;
  private blockLenWas = 0;

  constructor(protected readonly limits: H2ConnLimits) {
    this.frames = new FrameReader(this, limits.maxFrameSize);
    this.hpack = new HpackDecoder({ maxTableSize: limits.maxTableSize });
  }

  /** Bytes held: partial frames, a partial header block, the HPACK table. */
  get connBufferedBytes(): number {
    return this.frames.bufferedBytes + this.blockLen + this.hpack.tableSize;
  }

  // ---- what the directions define ----

  /** A decoded header block on `streamId` (`promised`: the stream a PUSH_PROMISE reserves, else 0). */
  protected abstract headerBlock(streamId: number, b: DecodedBlock, endStream: boolean, promised: number): void;
  /** A header block that cannot be decoded (state lost, or over the limit). */
  protected abstract undecodable(streamId: number, endStream: boolean, cause: LostCause, promised: number): void;
  protected abstract dataPiece(streamId: number, b: Buffer, s: number, e: number): void;
  protected abstract endStream(streamId: number): void;
  protected abstract reset(streamId: number): void;
  /** The connection's header state or framing is gone for `cause`. Called once. */
  protected abstract connectionLost(cause: LostCause): void;

  // ---- FrameSink ----

  frame(h: FrameHeader, p: Buffer, s: number, e: number): void {
    if (this.blockStream !== 0 && h.type !== CONTINUATION) return this.protocolError('continuation_expected');
    switch (h.type) {
      case HEADERS: case PUSH_PROMISE: return this.startBlock(h, p, s, e);
      case CONTINUATION: return this.continueBlock(h, p, s, e);
      case RST_STREAM: return this.reset(h.streamId);
      case SETTINGS: return this.settings(h, p, s, e);
      case GOAWAY:
        this.goawayLastStream = p.readUInt32BE(s) & 0x7fffffff;
        return;
      default: // PRIORITY, PING, WINDOW_UPDATE: nothing to replay
    }
  }

  data(h: FrameHeader, b: Buffer, s: number, e: number): void {
    if (this.blockStream !== 0) return this.protocolError('continuation_expected');
    this.dataPiece(h.streamId, b, s, e);
  }

  dataEnd(h: FrameHeader): void {
    if (this.blockStream !== 0) return this.protocolError('continuation_expected');
    if (h.flags & FLAG_END_STREAM) this.endStream(h.streamId);
  }

  frameError(e: FrameError): void {
    this.lastError = e;
    this.lose('protocol');
  }

  // ---- header blocks ----

  private startBlock(h: FrameHeader, p: Buffer, s: number, e: number): void {
    const r = fragmentBounds(h, s, e, p);
    if (r === null) return this.protocolError('frame_bad_padding');
    this.blockStream = h.streamId;
    this.blockType = h.type;
    this.blockEnd = h.type === HEADERS && (h.flags & FLAG_END_STREAM) !== 0;
    this.blockPromised = h.type === PUSH_PROMISE && r[0] >= s + 4 ? p.readUInt32BE(r[0] - 4) & 0x7fffffff : 0;
    this.block = [];
    this.blockLen = 0;
    this.addFragment(p, r[0], r[1], (h.flags & FLAG_END_HEADERS) !== 0);
  }

  private continueBlock(h: FrameHeader, p: Buffer, s: number, e: number): void {
    if (h.streamId !== this.blockStream) return this.protocolError('continuation_stream');
    this.addFragment(p, s, e, (h.flags & FLAG_END_HEADERS) !== 0);
  }

  private addFragment(p: Buffer, s: number, e: number, last: boolean): void {
    // Frames are whole copies (frames.ts), so a fragment can be kept as a view.
    if (this.blockLen + (e - s) <= this.limits.maxHeaderBytes) this.block.push(p.subarray(s, e));
    else this.block = [];
    this.blockLen += e - s;
    if (last) this.endBlock();
  }

  private endBlock(): void {
    const id = this.blockStream;
    const end = this.blockEnd;
    const promised = this.blockPromised;
    const parts = this.block;
    this.blockLenWas = this.blockLen;
    this.blockStream = 0;
    this.block = [];
    this.blockLen = 0;
    if (this.lost !== null) return this.undecodable(id, end, this.lost, promised);
    if (parts.length === 0 && this.blockLenWas > this.limits.maxHeaderBytes) {
      // Too large to hold: this request is over the limit, and what it inserted in the table is unknown.
      this.undecodable(id, end, 'too_large', promised);
      return this.lose('too_large');
    }
    const whole = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    const r = this.hpack.decode(whole, 0, whole.length, this.limits.maxHeaderBytes);
    if (typeof r === 'string') {
      this.lastError = r;
      this.lose('hpack');
      return this.undecodable(id, end, 'hpack', promised);
    }
    if (r.overLimit) return this.undecodable(id, end, 'too_large', promised);
    this.headerBlock(id, r, end, promised);
  }

  /**
   * A hole of `bytes` in the stream. Inside a DATA payload (length known) framing survives: returns
   * `dropStream` drops that stream first (the frame may end inside the hole). Anywhere else the
   * header state and framing are lost.
   */
  protected hole(bytes: number, cause: GapCause, dropStream: (id: number) => void): void {
    this.gapCause = cause;
    const sid = this.frames.dataStream;
    if (sid !== 0 && !this.inBlock && !this.frames.failed) {
      dropStream(sid);
      if (this.frames.skipInData(bytes)) return;
    }
    this.lose('gap');
  }

  /** The reason for what `cause` lost. */
  protected reasonFor(cause: LostCause): HttpDropReason {
    return lostReason(cause, this.gapCause);
  }

  /** Whether a header block is being collected (CONTINUATION frames expected). */
  protected get inBlock(): boolean {
    return this.blockStream !== 0;
  }

  private settings(h: FrameHeader, p: Buffer, s: number, e: number): void {
    if (h.flags & FLAG_ACK) return;
    for (let i = s; i + 6 <= e; i += 6) {
      if (p.readUInt16BE(i) === SETTINGS_HEADER_TABLE_SIZE) this.advertisedTableSize = p.readUInt32BE(i + 2);
    }
  }

  protected protocolError(name: string): void {
    this.lastError = name;
    this.frames.stop();
    this.lose('protocol');
  }

  /** The header state (and for 'protocol'/'gap'/'taint', the framing) is gone. */
  protected lose(cause: LostCause): void {
    if (cause !== 'too_large' && cause !== 'hpack') this.frames.stop();
    if (this.lost !== null) return;
    this.lost = cause;
    this.connectionLost(cause);
  }
}
