/**
 * HTTP/2 framing (RFC 9113 §4, §6), read incrementally from one direction of a connection.
 *
 * The 9-byte frame header is decoded in place. DATA payloads are handed on as views into the push
 * (padding removed), never copied here; every other frame is collected whole (they are small:
 * header blocks, SETTINGS, PING, …) and handed on once complete, so a consumer sees a frame only
 * when all of it arrived. Unknown frame types are skipped (§5.5).
 *
 * Bounds: a frame longer than `maxFrameSize` is a protocol error (a peer would refuse it too,
 * §4.2): the largest size a server accepts is its SETTINGS_MAX_FRAME_SIZE, which travels the
 * other way and may not be mirrored, so the bound is a generous fixed one (1 MiB by default;
 * servers advertise 16 KiB to 1 MiB). Errors stop the reader: framing is lost from there.
 */

export const FRAME_HEADER_BYTES = 9;

export const DATA = 0;
export const HEADERS = 1;
export const PRIORITY = 2;
export const RST_STREAM = 3;
export const SETTINGS = 4;
export const PUSH_PROMISE = 5;
export const PING = 6;
export const GOAWAY = 7;
export const WINDOW_UPDATE = 8;
export const CONTINUATION = 9;

export const FLAG_END_STREAM = 0x1;
export const FLAG_ACK = 0x1;
export const FLAG_END_HEADERS = 0x4;
export const FLAG_PADDED = 0x8;
export const FLAG_PRIORITY = 0x20;

export const SETTINGS_HEADER_TABLE_SIZE = 1;
export const SETTINGS_MAX_FRAME_SIZE = 5;

/** `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`, the client connection preface (§3.4). */
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const DEFAULT_MAX_FRAME_SIZE = 1024 * 1024;

/** Why framing failed. */
export type FrameError =
  | 'frame_too_large'
  | 'frame_bad_padding'
  | 'frame_bad_size'
  | 'frame_bad_stream';

export interface FrameHeader {
  length: number;
  type: number;
  flags: number;
  streamId: number;
}

/** Decode a frame header at b[off..off+9) into `h`. */
export function readFrameHeader(b: Uint8Array, off: number, h: FrameHeader): void {
  h.length = (b[off] << 16) | (b[off + 1] << 8) | b[off + 2];
  h.type = b[off + 3];
  h.flags = b[off + 4];
  h.streamId = ((b[off + 5] & 0x7f) * 0x1000000) + ((b[off + 6] << 16) | (b[off + 7] << 8) | b[off + 8]);
}

/**
 * Sizes and stream ids each known type must have (§6): a frame that breaks them is a connection
 * error. Returns the error or null.
 */
export function checkFrame(h: FrameHeader): FrameError | null {
  const { type, length, streamId } = h;
  switch (type) {
    case DATA: case HEADERS: case CONTINUATION: case PUSH_PROMISE:
      return streamId === 0 ? 'frame_bad_stream' : null;
    case PRIORITY:
      if (streamId === 0) return 'frame_bad_stream';
      return length === 5 ? null : 'frame_bad_size';
    case RST_STREAM:
      if (streamId === 0) return 'frame_bad_stream';
      return length === 4 ? null : 'frame_bad_size';
    case SETTINGS:
      if (streamId !== 0) return 'frame_bad_stream';
      return length % 6 === 0 && ((h.flags & FLAG_ACK) === 0 || length === 0) ? null : 'frame_bad_size';
    case PING:
      if (streamId !== 0) return 'frame_bad_stream';
      return length === 8 ? null : 'frame_bad_size';
    case GOAWAY:
      if (streamId !== 0) return 'frame_bad_stream';
      return length >= 8 ? null : 'frame_bad_size';
    case WINDOW_UPDATE:
      return length === 4 ? null : 'frame_bad_size';
    default:
      return null;
  }
}

/**
 * The header block fragment of a complete HEADERS or PUSH_PROMISE payload p[s..e): padding,
 * priority and the promised stream id removed (§6.2, §6.6). Returns [start, end], or null when the
 * padding is longer than the payload (a connection error).
 */
export function fragmentBounds(h: FrameHeader, s: number, e: number, p: Uint8Array): [number, number] | null {
  let start = s;
  let end = e;
  if (h.flags & FLAG_PADDED) {
    if (start >= end) return null;
    const pad = p[start++];
    end -= pad;
  }
  if (h.type === HEADERS && h.flags & FLAG_PRIORITY) start += 5;
  if (h.type === PUSH_PROMISE) start += 4;
  return start <= end ? [start, end] : null;
}

/** Flags each type defines (§6); a frame setting others is unlikely to be one, for findFrameChain. */
const KNOWN_FLAGS = [0x09, 0x2d, 0, 0, 0x01, 0x0c, 0x01, 0, 0, 0x04];
/** SETTINGS_MAX_FRAME_SIZE's default: what clients send unless the server raised it. */
const USUAL_MAX_FRAME = 16384;

/**
 * Where, within the first `window` bytes of b[s..e), a run of at least `min` client frames starts:
 * known types with only their defined flags, sizes and streams as §6 requires, client streams odd,
 * each at most 16 KiB, back to back. Returns the run's start (where framing goes on); -1 when no start in the window can begin such a run; -2 when an earlier start
 * is still undecided because its run reaches `e` (wait for more bytes), so the answer does not
 * depend on how the bytes arrived. HTTP/1.x text does not pass: its first bytes read as a length
 * far over 16 KiB. Used only after framing was lost (midstream pickup, a gap).
 */
export function findFrameChain(b: Uint8Array, s: number, e: number, window: number, min = 3): number {
  const h: FrameHeader = { length: 0, type: 0, flags: 0, streamId: 0 };
  const last = Math.min(e - 1, s + window);
  for (let o = s; o <= last; o++) {
    let p = o;
    let n = 0;
    let open = false;
    for (;;) {
      if (p + FRAME_HEADER_BYTES > e) { open = true; break; }
      readFrameHeader(b, p, h);
      if (!plausible(h, b[p + 5])) break;
      if (p + FRAME_HEADER_BYTES + h.length > e) { open = true; break; }
      p += FRAME_HEADER_BYTES + h.length;
      if (++n >= min) return o;
    }
    if (open) return -2;
  }
  return -1;
}

function plausible(h: FrameHeader, idByte: number): boolean {
  if (h.type > CONTINUATION || idByte & 0x80 || h.length > USUAL_MAX_FRAME) return false;
  if ((h.flags & ~KNOWN_FLAGS[h.type]) !== 0 || checkFrame(h) !== null) return false;
  const clientStream = h.type === DATA || h.type === HEADERS || h.type === CONTINUATION || h.type === PRIORITY;
  return !clientStream || (h.streamId & 1) === 1;
}

/** What the frame reader hands on. */
export interface FrameSink {
  /** A complete frame other than DATA, its payload at p[s..e) (valid only during the call). */
  frame(h: FrameHeader, p: Buffer, s: number, e: number): void;
  /** A piece of a DATA frame's data (padding removed); `h` is the frame's header. */
  data(h: FrameHeader, b: Buffer, s: number, e: number): void;
  /** The DATA frame `h` ended (its END_STREAM flag says whether the stream did). */
  dataEnd(h: FrameHeader): void;
  /** Framing failed: no more frames follow. */
  frameError(e: FrameError): void;
}

const ST_HEADER = 0;
const ST_PAYLOAD = 1; // collecting a whole frame
const ST_DATA = 2; // streaming a DATA frame
const ST_SKIP = 3; // an unknown type's payload
const ST_FAILED = 4;

export class FrameReader {
  private state = ST_HEADER;
  private readonly hbuf = Buffer.alloc(FRAME_HEADER_BYTES);
  private hlen = 0;
  readonly header: FrameHeader = { length: 0, type: 0, flags: 0, streamId: 0 };
  /** The frame being collected (ST_PAYLOAD). */
  private pbuf: Buffer | null = null;
  private plen = 0;
  /** Payload bytes of the current frame still to come (ST_DATA, ST_SKIP). */
  private left = 0;
  /** ST_DATA: padding at the end of the frame, and whether the pad length byte is still to come. */
  private pad = 0;
  private padByte = false;
  /** Frames read whole, for the caller's byte accounting. */
  frames = 0;

  constructor(
    private readonly sink: FrameSink,
    /** Largest frame accepted (see the file header). */
    public maxFrameSize = DEFAULT_MAX_FRAME_SIZE,
  ) {}

  /** Bytes held: a partial frame header or a partial non-DATA frame. */
  get bufferedBytes(): number {
    return this.hlen + (this.pbuf !== null ? this.plen : 0);
  }

  /** Between frames (nothing of a frame read yet). */
  get atBoundary(): boolean {
    return this.state === ST_HEADER && this.hlen === 0;
  }

  get failed(): boolean {
    return this.state === ST_FAILED;
  }

  /** Read again from a frame boundary (after a resync found one). */
  restart(): void {
    this.state = ST_HEADER;
    this.hlen = 0;
    this.pbuf = null;
  }

  /** Stop reading (the consumer gave up on the connection). */
  stop(): void {
    this.state = ST_FAILED;
    this.pbuf = null;
  }

  /** Reads d[p..e); returns where it stopped: e, or the first byte not read after a failure. */
  push(d: Buffer, p: number, e: number): number {
    while (p < e) {
      switch (this.state) {
        case ST_HEADER: p = this.onHeader(d, p, e); break;
        case ST_PAYLOAD: p = this.onPayload(d, p, e); break;
        case ST_DATA: p = this.onData(d, p, e); break;
        case ST_SKIP: {
          const n = Math.min(this.left, e - p);
          this.left -= n;
          p += n;
          if (this.left === 0) this.state = ST_HEADER;
          break;
        }
        default: return p;
      }
    }
    return p;
  }

  private onHeader(d: Buffer, p: number, e: number): number {
    const h = this.header;
    if (this.hlen === 0 && e - p >= FRAME_HEADER_BYTES) {
      readFrameHeader(d, p, h);
      p += FRAME_HEADER_BYTES;
    } else {
      const n = Math.min(FRAME_HEADER_BYTES - this.hlen, e - p);
      d.copy(this.hbuf, this.hlen, p, p + n);
      this.hlen += n;
      p += n;
      if (this.hlen < FRAME_HEADER_BYTES) return p;
      this.hlen = 0;
      readFrameHeader(this.hbuf, 0, h);
    }
    this.startFrame(h);
    return p;
  }

  private startFrame(h: FrameHeader): void {
    const err = h.length > this.maxFrameSize ? 'frame_too_large' : checkFrame(h);
    if (err !== null) return this.fail(err);
    if (h.type === DATA) {
      this.state = ST_DATA;
      this.left = h.length;
      this.pad = 0;
      this.padByte = (h.flags & FLAG_PADDED) !== 0;
      if (this.padByte && h.length === 0) return this.fail('frame_bad_padding');
      if (h.length === 0) this.endData();
    } else if (h.type > CONTINUATION) {
      this.state = h.length > 0 ? ST_SKIP : ST_HEADER;
      this.left = h.length;
    } else if (h.length === 0) {
      this.state = ST_HEADER;
      this.frames++;
      this.sink.frame(h, this.hbuf, 0, 0);
    } else {
      // Grown as bytes arrive: a header alone must not make us hold what it announces.
      this.state = ST_PAYLOAD;
      this.pbuf = Buffer.allocUnsafe(Math.min(h.length, 4096));
      this.plen = 0;
    }
  }

  private onPayload(d: Buffer, p: number, e: number): number {
    const want = this.header.length;
    let buf = this.pbuf!;
    const n = Math.min(want - this.plen, e - p);
    if (this.plen + n > buf.length) {
      const grown = Buffer.allocUnsafe(Math.min(want, Math.max(2 * buf.length, this.plen + n)));
      buf.copy(grown, 0, 0, this.plen);
      this.pbuf = buf = grown;
    }
    d.copy(buf, this.plen, p, p + n);
    this.plen += n;
    if (this.plen === want) {
      this.pbuf = null;
      this.state = ST_HEADER;
      this.frames++;
      this.sink.frame(this.header, buf, 0, buf.length);
    }
    return p + n;
  }

  private onData(d: Buffer, p: number, e: number): number {
    const h = this.header;
    if (this.padByte) {
      this.padByte = false;
      this.pad = d[p];
      this.left--;
      if (this.pad > this.left) {
        this.fail('frame_bad_padding');
        return e;
      }
      p++;
    }
    // Data bytes of this frame still to come, then its padding (`pad`: padding still to come).
    const take = Math.min(this.left - this.pad, e - p);
    if (take > 0) {
      this.sink.data(h, d, p, p + take);
      // The consumer may have given up on the connection.
      if (this.state === ST_FAILED) return p;
    }
    this.left -= take;
    p += take;
    if (this.left === this.pad) {
      const skip = Math.min(this.pad, e - p);
      this.pad -= skip;
      this.left -= skip;
      p += skip;
    }
    if (this.left === 0) this.endData();
    return p;
  }

  /**
   * `bytes` unknown stream bytes: true (and stepped over) when they lie inside the current DATA
   * frame's payload, whose length is known, so framing goes on; false otherwise (the reader stops).
   */
  skipInData(bytes: number): boolean {
    if (this.state !== ST_DATA || this.padByte || bytes > this.left) {
      this.stop();
      return false;
    }
    const data = Math.min(bytes, this.left - this.pad);
    this.pad -= bytes - data;
    this.left -= bytes;
    if (this.left === 0) this.endData();
    return true;
  }

  /** The stream of the DATA frame being read, or 0. */
  get dataStream(): number {
    return this.state === ST_DATA ? this.header.streamId : 0;
  }

  private endData(): void {
    this.state = ST_HEADER;
    this.frames++;
    this.sink.dataEnd(this.header);
  }

  private fail(err: FrameError): void {
    this.stop();
    this.sink.frameError(err);
  }
}
