/**
 * Incremental HTTP/1.x response parser for one server-to-client stream, for shadow testing.
 *
 * It keeps a digest of each response, never the body: status, the header fields, the body length
 * and a SHA-256 computed as the body streams (plus, when asked, a bounded snippet and a bounded
 * copy of small bodies for structural JSON comparison).
 *
 * Framing follows RFC 9112 §6.3: a response to HEAD and any 1xx, 204 or 304 has no body; a 2xx to
 * CONNECT and a 101 switch the connection away from HTTP/1.x; Transfer-Encoding ending in chunked
 * is chunked (it wins over Content-Length); other Transfer-Encodings and a missing length read
 * until the connection closes. Interim 1xx responses (100, 103) are skipped: they answer no
 * request. Which request a response answers comes from `requestMethod()`, fed from the request
 * side in order (pipelining included); when the response's request is not known yet (the mirror
 * delivered the answer first), framing assumes a method other than HEAD.
 *
 * Losses are reported with whether the parser is still in sync: a hole inside a body of known
 * length is stepped over (that response is lost, the next ones are fine); a hole anywhere else,
 * a malformed head or a taint ends parsing of the connection.
 */
import { createHash, type Hash } from 'node:crypto';
import type { GapCause, StreamSink, TaintCause } from '../reassemble/stream.js';

export interface ResponseDigest {
  status: number;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minorVersion: number;
  /** Header fields in wire order, flat: [name0, value0, ...]; names lower-cased, values trimmed. */
  headers: string[];
  bodyLength: number;
  /** SHA-256 of the body after removing chunked framing, hex. */
  bodySha256: string;
  /** The first body bytes, at most `snippetBytes` (empty when off). */
  bodySnippet: Buffer;
  /** The whole body when it is JSON and at most `captureJsonBytes` long; null otherwise. */
  jsonBody: Buffer | null;
}

/** Why a response could not be digested. */
export const RESPONSE_LOSS_REASONS = ['gap', 'malformed', 'head_too_large', 'overlap_conflict', 'incomplete'] as const;
export type ResponseLossReason = (typeof RESPONSE_LOSS_REASONS)[number];

export interface ResponseParserEvents {
  /** Method of the oldest request not yet answered, or null when that request is not known yet. */
  requestMethod(): string | null;
  onResponse(d: ResponseDigest): void;
  /**
   * A response was lost. `inSync`: the parser knows where the next response starts (a hole inside
   * a body of known length); otherwise parsing of this connection has ended.
   */
  onLost(reason: ResponseLossReason, inSync: boolean): void;
  /** The connection switched away from HTTP/1.x (101, or 2xx to CONNECT): no more responses. */
  onTunnel?(): void;
}

export interface ResponseParserOptions {
  /** Bytes of the first body bytes to keep in the digest (0 = none). */
  snippetBytes?: number;
  /** Keep whole JSON bodies up to this size for structural comparison (0 = never). */
  captureJsonBytes?: number;
  /** Largest status line + header section accepted. */
  maxHeadBytes?: number;
}

const HEAD = 0;
const BODY = 1; // Content-Length
const CHUNK_SIZE = 2;
const CHUNK_DATA = 3;
const CHUNK_CRLF = 4;
const TRAILER = 5;
const UNTIL_CLOSE = 6;
const DEAD = 7; // tunnel, desync or closed: ignore the rest

const LF = 10;
const CR = 13;
const MAX_CHUNK_LINE = 4096;
const MAX_TRAILER = 64 * 1024;
const EMPTY = Buffer.alloc(0);
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?:[ \t].*)?$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export class HttpResponseParser implements StreamSink {
  private state = HEAD;
  private readonly maxHead: number;
  private readonly snippetBytes: number;
  private readonly captureJson: number;

  // Head (status line + fields) across pushes; `nl` tracks line ends to find the empty line.
  private head: Buffer = Buffer.allocUnsafe(1024);
  private headLen = 0;
  private nl = 0;

  // Chunk-size line / trailer section across pushes.
  private line = '';
  private trailerBytes = 0;
  private crlfSeen = 0;

  // Response in progress.
  private status = 0;
  private minor = 1;
  private headers: string[] = [];
  private remaining = 0;
  private digest: BodyDigest | null = null;
  /** The current response was lost; its body is skipped by framing to stay in sync. */
  private discarding = false;
  /** Bytes of the response in progress, for the table's overlap check. */
  private msgBytes = 0;
  /** Messages (interim ones included) finished or lost so far. */
  private responses = 0;

  constructor(private readonly events: ResponseParserEvents, opts: ResponseParserOptions = {}) {
    this.maxHead = opts.maxHeadBytes ?? 64 * 1024;
    this.snippetBytes = opts.snippetBytes ?? 0;
    this.captureJson = opts.captureJsonBytes ?? 0;
  }

  get bufferedBytes(): number {
    return this.headLen + this.line.length + (this.digest?.bufferedBytes ?? 0);
  }

  get pendingBytes(): number {
    return this.state === DEAD ? 0 : this.msgBytes;
  }

  push(buf: Uint8Array, off: number, len: number): void {
    if (len <= 0 || this.state === DEAD) return;
    const d = Buffer.from(buf.buffer, buf.byteOffset + off, len);
    let p = 0;
    while (p < len && this.state !== DEAD) {
      const before = p;
      const gen = this.responses;
      switch (this.state) {
        case HEAD: p = this.onHead(d, p); break;
        case BODY: p = this.onBody(d, p); break;
        case CHUNK_SIZE: p = this.onChunkSize(d, p); break;
        case CHUNK_DATA: p = this.onChunkData(d, p); break;
        case CHUNK_CRLF: p = this.onChunkCrlf(d, p); break;
        case TRAILER: p = this.onTrailer(d, p); break;
        case UNTIL_CLOSE: this.body(d, p, len); p = len; break;
      }
      // A response that ended in this step leaves nothing pending.
      if (this.responses === gen) this.msgBytes += p - before;
    }
  }

  gap(bytes: number, _cause?: GapCause): void {
    if (bytes <= 0 || this.state === DEAD) return;
    const st = this.state;
    if ((st === BODY || st === CHUNK_DATA) && this.remaining >= bytes) {
      // The body's length is known: step over the hole and stay in sync.
      if (!this.discarding) this.lose('gap', true);
      this.remaining -= bytes;
      if (this.remaining === 0) {
        if (st === BODY) this.finish();
        else this.state = CHUNK_CRLF;
      }
      return;
    }
    // Anywhere else the lost bytes may hold the start of one or more responses: pairing is over.
    if (this.discarding || st === HEAD) this.events.onLost('gap', false);
    else this.lose('gap', false);
    this.die();
  }

  taint(_cause: TaintCause): void {
    if (this.state === DEAD) return;
    this.lose('overlap_conflict', false);
    this.die();
  }

  stalled(): void {}

  end(): void {
    if (this.state === DEAD) return;
    if (this.state === UNTIL_CLOSE && !this.discarding) this.finish();
    else if (!(this.state === HEAD && this.headLen === 0) && !this.discarding) this.lose('incomplete', false);
    this.die();
  }

  // ---- states ----

  private onHead(d: Buffer, p: number): number {
    const n = d.length;
    if (this.headLen === 0) {
      // Empty lines before a status line are tolerated (RFC 9112 §2.2).
      while (p < n && (d[p] === CR || d[p] === LF)) p++;
      if (p === n) return n;
    }
    const start = p;
    let nl = this.nl;
    let end = -1;
    for (; p < n; p++) {
      const c = d[p];
      if (c === LF) {
        if (nl >= 1) { end = p + 1; break; }
        nl = 1;
      } else if (c === CR) {
        if (nl === 1) nl = 2;
      } else nl = 0;
    }
    const stop = end < 0 ? n : end;
    const take = stop - start;
    if (this.headLen + take > this.maxHead) {
      this.events.onLost('head_too_large', false);
      this.die();
      return n;
    }
    if (this.headLen + take > this.head.length) {
      const bigger = Buffer.allocUnsafe(Math.min(this.maxHead, Math.max(this.head.length * 2, this.headLen + take)));
      this.head.copy(bigger, 0, 0, this.headLen);
      this.head = bigger;
    }
    d.copy(this.head, this.headLen, start, stop);
    this.headLen += take;
    this.nl = nl;
    if (end < 0) return n;
    this.nl = 0;
    this.completeHead();
    return end;
  }

  private completeHead(): void {
    const text = this.head.toString('latin1', 0, this.headLen);
    this.headLen = 0;
    if (this.head.length > 16 * 1024) this.head = Buffer.allocUnsafe(1024);
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) if (lines[i].endsWith('\r')) lines[i] = lines[i].slice(0, -1);
    while (lines.length && lines[lines.length - 1] === '') lines.pop();
    const m = STATUS_LINE.exec(lines[0] ?? '');
    if (!m) return this.malformed();
    const status = Number(m[2]);
    const headers: string[] = [];
    for (let i = 1; i < lines.length; i++) {
      const l = lines[i];
      if (l.includes('\r')) return this.malformed();
      if (l[0] === ' ' || l[0] === '\t') {
        // obs-fold: a continuation of the previous value (RFC 9112 §5.2 lets a recipient unfold it).
        if (!headers.length) return this.malformed();
        headers[headers.length - 1] += ` ${l.trim()}`;
        continue;
      }
      const c = l.indexOf(':');
      if (c <= 0) return this.malformed();
      const name = l.slice(0, c);
      if (!TOKEN.test(name)) return this.malformed();
      headers.push(name.toLowerCase(), l.slice(c + 1).trim());
    }
    if (status < 200) {
      if (status === 101) return this.tunnel(status, m[1], headers);
      // Interim: answers no request; the final response follows.
      this.msgBytes = 0;
      this.responses++;
      return;
    }
    const method = this.events.requestMethod();
    this.status = status;
    this.minor = Number(m[1]);
    this.headers = headers;
    this.digest = new BodyDigest(this.snippetBytes, this.captureJson, headers);
    this.discarding = false;
    if (method === 'CONNECT' && status < 300) return this.tunnel(status, m[1], headers);
    if (method === 'HEAD' || status === 204 || status === 304) return this.finish();
    const te = lastValue(headers, 'transfer-encoding');
    if (te !== null) {
      this.state = /(?:^|,)\s*chunked\s*$/i.test(te) ? CHUNK_SIZE : UNTIL_CLOSE;
      this.line = '';
      return;
    }
    const cl = contentLength(headers);
    if (cl === -2) return this.malformed();
    if (cl === -1) {
      this.state = UNTIL_CLOSE;
      return;
    }
    if (cl === 0) return this.finish();
    this.remaining = cl;
    this.state = BODY;
  }

  private onBody(d: Buffer, p: number): number {
    const take = Math.min(this.remaining, d.length - p);
    this.body(d, p, p + take);
    this.remaining -= take;
    if (this.remaining === 0) this.finish();
    return p + take;
  }

  private onChunkSize(d: Buffer, p: number): number {
    const i = d.indexOf(LF, p);
    const stop = i < 0 ? d.length : i;
    if (this.line.length + (stop - p) > MAX_CHUNK_LINE) return this.malformedAt(d.length);
    this.line += d.toString('latin1', p, stop);
    if (i < 0) return d.length;
    let l = this.line;
    this.line = '';
    if (l.endsWith('\r')) l = l.slice(0, -1);
    const semi = l.indexOf(';');
    const hex = (semi < 0 ? l : l.slice(0, semi)).trim();
    if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) return this.malformedAt(i + 1);
    const size = parseInt(hex, 16);
    if (size === 0) {
      this.state = TRAILER;
      this.trailerBytes = 0;
      this.nl = 1; // an immediately empty line ends the trailer section
    } else {
      this.remaining = size;
      this.state = CHUNK_DATA;
    }
    return i + 1;
  }

  private onChunkData(d: Buffer, p: number): number {
    const take = Math.min(this.remaining, d.length - p);
    this.body(d, p, p + take);
    this.remaining -= take;
    if (this.remaining === 0) {
      this.state = CHUNK_CRLF;
      this.crlfSeen = 0;
    }
    return p + take;
  }

  private onChunkCrlf(d: Buffer, p: number): number {
    while (p < d.length) {
      const c = d[p++];
      if (c === CR && this.crlfSeen === 0) { this.crlfSeen = 1; continue; }
      if (c === LF) {
        this.crlfSeen = 0;
        this.state = CHUNK_SIZE;
        return p;
      }
      return this.malformedAt(d.length);
    }
    return p;
  }

  /** Trailer fields are not kept: skip to the empty line. */
  private onTrailer(d: Buffer, p: number): number {
    let nl = this.nl;
    for (; p < d.length; p++) {
      const c = d[p];
      if (++this.trailerBytes > MAX_TRAILER) {
        this.events.onLost('head_too_large', false);
        this.die();
        return d.length;
      }
      if (c === LF) {
        if (nl >= 1) {
          this.nl = 0;
          this.finish();
          return p + 1;
        }
        nl = 1;
      } else if (c === CR) {
        if (nl === 1) nl = 2;
      } else nl = 0;
    }
    this.nl = nl;
    return p;
  }

  // ---- helpers ----

  private body(d: Buffer, from: number, to: number): void {
    if (to > from && !this.discarding) this.digest!.update(d.subarray(from, to));
  }

  private finish(): void {
    if (!this.discarding) {
      this.events.onResponse(this.digest!.finish(this.status, this.minor, this.headers));
    }
    this.reset();
  }

  private reset(): void {
    this.responses++;
    if (this.state !== DEAD) this.state = HEAD;
    this.digest = null;
    this.headers = [];
    this.discarding = false;
    this.msgBytes = 0;
    this.nl = 0;
  }

  private lose(reason: ResponseLossReason, inSync: boolean): void {
    this.events.onLost(reason, inSync);
    this.discarding = true;
    this.digest = null;
  }

  private tunnel(status: number, minor: string, headers: string[]): void {
    this.status = status;
    this.minor = Number(minor);
    this.headers = headers;
    this.digest = new BodyDigest(0, 0, headers);
    this.discarding = false;
    this.finish();
    this.events.onTunnel?.();
    this.die();
  }

  private malformed(): void {
    this.events.onLost('malformed', false);
    this.die();
  }

  private malformedAt(p: number): number {
    this.malformed();
    return p;
  }

  private die(): void {
    this.state = DEAD;
    this.headLen = 0;
    this.line = '';
    this.digest = null;
    this.msgBytes = 0;
  }
}

function lastValue(h: string[], name: string): string | null {
  let v: string | null = null;
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) v = v === null ? h[i + 1] : `${v}, ${h[i + 1]}`;
  return v;
}

/** -1: none; -2: invalid or conflicting; else the length. */
function contentLength(h: string[]): number {
  let n = -1;
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] !== 'content-length') continue;
    for (const part of h[i + 1].split(',')) {
      const s = part.trim();
      if (!/^\d{1,15}$/.test(s)) return -2;
      const v = Number(s);
      if (n !== -1 && v !== n) return -2;
      n = v;
    }
  }
  return n;
}

function isJson(h: string[]): boolean {
  const ct = lastValue(h, 'content-type');
  return ct !== null && /^application\/(?:[\w.+-]+\+)?json\b/i.test(ct.trim());
}

/**
 * The body part of a digest, fed as the body streams: length, SHA-256, a bounded snippet and, for
 * JSON bodies up to a size, a copy. Used for production's responses (parsed from the mirror) and
 * the destinations' (read by node:http) alike, so both sides are digested the same way.
 */
export class BodyDigest {
  private len = 0;
  private readonly hash: Hash = createHash('sha256');
  private snippet: Buffer[] = [];
  private snippetLen = 0;
  private json: Buffer[] | null;
  private jsonLen = 0;

  /** `headers`: flat, names lower-cased (to see whether the body is JSON). */
  constructor(private readonly snippetBytes: number, private readonly captureJson: number, headers: string[]) {
    this.json = captureJson > 0 && isJson(headers) ? [] : null;
  }

  get bufferedBytes(): number {
    return this.snippetLen + this.jsonLen;
  }

  /** `v` is only read during the call. */
  update(v: Uint8Array): void {
    if (v.length === 0) return;
    this.len += v.length;
    this.hash.update(v);
    if (this.snippetLen < this.snippetBytes) {
      const s = Buffer.from(v.subarray(0, this.snippetBytes - this.snippetLen));
      this.snippet.push(s);
      this.snippetLen += s.length;
    }
    if (this.json !== null) {
      if (this.jsonLen + v.length > this.captureJson) {
        this.json = null;
        this.jsonLen = 0;
      } else {
        this.json.push(Buffer.from(v));
        this.jsonLen += v.length;
      }
    }
  }

  finish(status: number, minorVersion: number, headers: string[]): ResponseDigest {
    return {
      status,
      minorVersion,
      headers,
      bodyLength: this.len,
      bodySha256: this.hash.digest('hex'),
      bodySnippet: this.snippetLen ? Buffer.concat(this.snippet) : EMPTY,
      jsonBody: this.json ? Buffer.concat(this.json) : null,
    };
  }
}

/** node:http's rawHeaders ([Name, value, ...] as on the wire) in digest form (names lower-cased). */
export function digestHeaders(raw: string[]): string[] {
  const out = new Array<string>(raw.length);
  for (let i = 0; i < raw.length; i += 2) {
    out[i] = raw[i].toLowerCase();
    out[i + 1] = raw[i + 1].trim();
  }
  return out;
}
