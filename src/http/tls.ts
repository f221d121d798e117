/**
 * TLS on the mirrored port: recognised by its record layer (RFC 8446 §5.1, RFC 5246 §6.2) in the
 * first bytes of a stream, so a connection we cannot read is said to be TLS, not "malformed".
 *
 * - At a connection's start (its SYN seen) the client's first bytes are a handshake record
 *   (type 22, version 3.0–3.4, a length a record can have), or an SSLv2-compatible ClientHello
 *   (RFC 5246 appendix E.2). Neither can begin an HTTP/1.x request: its first byte is a tchar or
 *   CR, never 0x16 or a byte ≥ 0x80. So a stream is judged on its first 5 bytes at most, and one
 *   that does not start with such a byte goes straight to the HTTP parser.
 * - After a midstream pickup (or a hole before anything was read), the first bytes seen may be any
 *   record: change_cipher_spec, alert, handshake or application_data with a TLS 1.0+ version.
 *   Bytes that are not at a record boundary do not match and go to the parser, whose resync
 *   counts them as http_midstream_skipped (never http_malformed: it refuses nothing before it
 *   has found a request line).
 * - A TLS stream is one drop of `requests` = 1 (the connection: what it carried is unknown), then
 *   every later byte is skipped bytes under the same reason. Holes in it are not counted: their
 *   bytes were never pushed.
 */
import type { GapCause, StreamSink, TaintCause } from '../reassemble/stream.js';

/** Record-layer header: type, version (2), length (2). */
export const TLS_HEADER_BYTES = 5;
const HANDSHAKE = 22;
const CHANGE_CIPHER_SPEC = 20;
const HEARTBEAT = 24;
/** TLSCiphertext.length may be at most 2^14 + 2048 (RFC 5246 §6.2.3). */
const MAX_RECORD = 16384 + 2048;

export type TlsVerdict = 'tls' | 'not_tls' | 'need_more';

/** Whether a stream's first byte can begin TLS at all (a cheap test before buffering). */
export function mayBeTls(first: number, midstream: boolean): boolean {
  if (midstream) return first >= CHANGE_CIPHER_SPEC && first <= HEARTBEAT;
  return first === HANDSHAKE || first >= 0x80;
}

/**
 * Judges the first bytes of a stream `b[off..off+len)`: 'need_more' until 5 bytes are there
 * (only when the first byte may begin TLS).
 */
export function sniffTls(b: Uint8Array, off: number, len: number, midstream: boolean): TlsVerdict {
  if (len <= 0) return 'need_more';
  const t = b[off];
  if (!mayBeTls(t, midstream)) return 'not_tls';
  if (len < TLS_HEADER_BYTES) return 'need_more';
  const major = b[off + 1];
  const minor = b[off + 2];
  const length = (b[off + 3] << 8) | b[off + 4];
  if (t >= 0x80) return sslv2ClientHello(b, off) ? 'tls' : 'not_tls';
  if (major !== 3 || minor > 4 || (midstream && minor === 0)) return 'not_tls';
  return length > 0 && length <= MAX_RECORD ? 'tls' : 'not_tls';
}

/** SSLv2-compatible ClientHello: 2-byte length with the high bit set, msg type 1, version 2.0 or 3.x. */
function sslv2ClientHello(b: Uint8Array, off: number): boolean {
  const length = ((b[off] & 0x7f) << 8) | b[off + 1];
  const major = b[off + 3];
  const minor = b[off + 4];
  const version = (major === 0 && minor === 2) || (major === 3 && minor <= 4);
  return length >= 9 && b[off + 2] === 1 && version;
}

const SNIFF = 0;
const PASS = 1;
const TLS = 2;

/**
 * A stream sink that judges the first bytes (see the header) and then either hands everything to
 * `inner` (the HTTP parser) or, for TLS, reports `onTls(requests, bytes)` and keeps the rest away
 * from the parser.
 */
export class TlsGuard implements StreamSink {
  private state = SNIFF;
  private readonly head = Buffer.alloc(TLS_HEADER_BYTES);
  private headLen = 0;

  constructor(
    private readonly inner: StreamSink,
    private midstream: boolean,
    private readonly onTls: (requests: number, bytes: number) => void,
  ) {}

  push(buf: Uint8Array, off: number, len: number): void {
    if (len <= 0) return;
    if (this.state === PASS) this.inner.push(buf, off, len);
    else if (this.state === TLS) this.onTls(0, len);
    else this.sniff(buf, off, len);
  }

  private sniff(buf: Uint8Array, off: number, len: number): void {
    let verdict: TlsVerdict;
    if (this.headLen === 0) {
      verdict = sniffTls(buf, off, len, this.midstream);
    } else {
      const take = Math.min(len, TLS_HEADER_BYTES - this.headLen);
      this.head.set(buf.subarray(off, off + take), this.headLen);
      verdict = sniffTls(this.head, 0, this.headLen + take, this.midstream);
      if (verdict === 'need_more') this.headLen += take;
    }
    if (verdict === 'tls') {
      this.state = TLS;
      this.onTls(1, this.headLen + len);
      this.headLen = 0;
    } else if (verdict === 'not_tls') {
      this.pass();
      this.inner.push(buf, off, len);
    } else if (this.headLen === 0) {
      // The first bytes of a stream, fewer than a record header: hold them (5 bytes at most).
      this.head.set(buf.subarray(off, off + len), 0);
      this.headLen = len;
    }
  }

  /** From here on the parser has the stream: give it what was held first. */
  private pass(): void {
    this.state = PASS;
    const n = this.headLen;
    this.headLen = 0;
    if (n > 0) this.inner.push(Buffer.from(this.head.subarray(0, n)), 0, n);
  }

  gap(bytes: number, cause?: GapCause): void {
    if (this.state === TLS) return;
    if (this.state === SNIFF && this.headLen === 0) {
      // Nothing read yet: the bytes after the hole are judged as a midstream pickup's would be.
      this.midstream = true;
    } else if (this.state === SNIFF) this.pass();
    this.inner.gap(bytes, cause);
  }

  taint(cause: TaintCause): void {
    if (this.state === TLS) return;
    if (this.state === SNIFF) this.pass();
    this.inner.taint(cause);
  }

  stalled(): void {
    if (this.state !== TLS) this.inner.stalled();
  }

  end(): void {
    if (this.state === SNIFF) this.pass();
    if (this.state === PASS) this.inner.end();
  }

  peer(buf: Uint8Array, off: number, len: number): void {
    if (this.state !== TLS) this.inner.peer?.(buf, off, len);
  }

  get bufferedBytes(): number {
    return this.state === PASS ? this.inner.bufferedBytes : this.headLen;
  }

  get pendingBytes(): number {
    return this.state === PASS ? this.inner.pendingBytes : this.headLen;
  }

  /** The stream was judged TLS. */
  get isTls(): boolean {
    return this.state === TLS;
  }
}
