/**
 * The digest of HTTP/1.x answers, for shadow testing: production's, read from the mirrored
 * server-to-client stream (HttpResponseParser), and the destinations', read by the replay client
 * (src/replay/destination.ts). Both frame through the one reply framer (reply.ts, which states what
 * an answer may be) and digest through AnswerDigest, so the same bytes give the same digest.
 *
 * A digest keeps no body: status, the header fields, the body length and a SHA-256 computed as the
 * body streams (plus, when asked, a bounded snippet and a bounded copy of small JSON bodies).
 *
 * Which request an answer on the mirror answers comes from `requestMethod()`, fed from the request
 * side in order (pipelining included); when it is not known yet (the mirror delivered the answer
 * first), framing assumes a method other than HEAD and CONNECT.
 *
 * Losses are reported with whether the parser is still in sync: a hole inside a body of known
 * length is stepped over (that response is lost, the next ones are fine); a hole anywhere else,
 * a malformed head or a taint ends parsing of the connection.
 */
import type crypto from 'node:crypto';
import type { Hash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { GapCause, StreamSink, TaintCause } from '../reassemble/stream.js';
import { BODY_SWITCH } from './grammar.js';
import { ReplyFramer, type ReplyError, type ReplyEvents, type ReplyHead } from './reply.js';

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
  /** Trailer fields like `headers` (HTTP/2's trailing HEADERS, where gRPC puts grpc-status); undefined: none. */
  trailers?: string[];
}

/** Why a response could not be digested. */
export const RESPONSE_LOSS_REASONS = ['gap', 'malformed', 'head_too_large', 'overlap_conflict', 'incomplete', 'tls'] as const;
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

const EMPTY = Buffer.alloc(0);

let createHash: typeof crypto.createHash | null = null;
/** node:crypto (OpenSSL) only once an answer is hashed (--compare): loading it costs ~1 MB of RSS. */
function sha256(): Hash {
  createHash ??= (createRequire(import.meta.url)('node:crypto') as typeof crypto).createHash;
  return createHash('sha256');
}

/** Production's answers on one mirrored server-to-client stream, digested one by one. */
export class HttpResponseParser implements StreamSink, ReplyEvents {
  private readonly framer: ReplyFramer;
  private readonly answer: AnswerDigest;
  /** The current response was lost; its body is skipped by framing to stay in sync. */
  private discarding = false;
  /**
   * Where the bytes after a switch go when the connection changed to a protocol someone reads
   * (101 with Upgrade: h2c): set from onTunnel; unset, they are ignored.
   */
  tunnel: StreamSink | null = null;

  constructor(private readonly events: ResponseParserEvents, opts: ResponseParserOptions = {}) {
    this.framer = new ReplyFramer(this, { maxHeadBytes: opts.maxHeadBytes });
    this.answer = new AnswerDigest(opts.snippetBytes ?? 0, opts.captureJsonBytes ?? 0);
  }

  get bufferedBytes(): number {
    return this.framer.bufferedBytes + this.answer.bufferedBytes + (this.tunnel?.bufferedBytes ?? 0);
  }

  get pendingBytes(): number {
    return this.tunnel?.pendingBytes ?? this.framer.pendingBytes;
  }

  push(buf: Uint8Array, off: number, len: number): void {
    if (this.tunnel) return this.tunnel.push(buf, off, len);
    if (len <= 0 || this.framer.stopped) return;
    const d = Buffer.from(buf.buffer, buf.byteOffset + off, len);
    let p = 0;
    while (p < len) {
      p = this.framer.push(d, p, len);
      // onTunnel may have set a reader for what follows the 101, in this same push.
      const after = this.switchedTo();
      if (after && p < len) return after.push(buf, off + p, len - p);
    }
  }

  private switchedTo(): StreamSink | null {
    return this.tunnel;
  }

  gap(bytes: number, cause?: GapCause): void {
    if (this.tunnel) return this.tunnel.gap(bytes, cause);
    if (bytes <= 0 || this.framer.stopped) return;
    if (this.framer.canStepOver(bytes)) {
      // The body's length is known: step over the hole and stay in sync.
      if (!this.discarding) this.lose('gap', true);
      this.framer.stepOver(bytes);
      return;
    }
    // Anywhere else the lost bytes may hold the start of one or more responses: pairing is over.
    this.framer.stop();
    this.events.onLost('gap', false);
  }

  taint(cause: TaintCause): void {
    if (this.tunnel) return this.tunnel.taint(cause);
    if (this.framer.stopped) return;
    this.framer.stop();
    this.events.onLost('overlap_conflict', false);
  }

  stalled(): void {}

  end(): void {
    if (this.tunnel) return this.tunnel.end();
    if (this.framer.stopped) return;
    if (!this.framer.end() && !this.discarding) this.events.onLost('incomplete', false);
  }

  // ---- the framer's events ----

  requestMethod(): string | null {
    return this.events.requestMethod();
  }

  onHead(h: ReplyHead): void {
    this.discarding = false;
    this.answer.head(h);
  }

  onBody(b: Buffer, start: number, end: number): void {
    if (!this.discarding) this.answer.body(b, start, end);
  }

  onEnd(_persistent: boolean): void {
    if (!this.discarding) this.events.onResponse(this.answer.finish());
    this.discarding = false;
    if (this.framer.framing === BODY_SWITCH) this.events.onTunnel?.();
  }

  onError(reason: ReplyError, _detail: string): void {
    this.events.onLost(reason, false);
  }

  private lose(reason: ResponseLossReason, inSync: boolean): void {
    this.events.onLost(reason, inSync);
    this.discarding = true;
    this.answer.drop();
  }
}

/**
 * One answer's digest, built from a reply framer's head and body events: production's and the
 * destinations' are made by this one class.
 */
export class AnswerDigest {
  private status = 0;
  private minor = 1;
  private headers: string[] = [];
  private digest: BodyDigest | null = null;
  private trailerFields: string[] | undefined = undefined;

  constructor(private readonly snippetBytes: number, private readonly captureJson: number) {}

  get bufferedBytes(): number {
    return this.digest?.bufferedBytes ?? 0;
  }

  head(h: ReplyHead): void {
    this.status = h.status;
    this.minor = h.minorVersion;
    this.headers = digestHeaders(h.fields());
    this.digest = new BodyDigest(this.snippetBytes, this.captureJson, this.headers);
  }

  /** `b[start..end)` is only read during the call. */
  body(b: Buffer, start: number, end: number): void {
    if (end > start) this.digest!.update(b.subarray(start, end));
  }

  /** HTTP/2: the trailing HEADERS block (flat, names lower-case as HTTP/2 has them). */
  trailers(fields: string[]): void {
    this.trailerFields = fields;
  }

  finish(): ResponseDigest {
    const d = this.digest!.finish(this.status, this.minor, this.headers);
    if (this.trailerFields) d.trailers = this.trailerFields;
    this.drop();
    return d;
  }

  drop(): void {
    this.digest = null;
    this.headers = [];
    this.trailerFields = undefined;
  }
}

function lastValue(h: string[], name: string): string | null {
  let v: string | null = null;
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) v = v === null ? h[i + 1] : `${v}, ${h[i + 1]}`;
  return v;
}

function isJson(h: string[]): boolean {
  const ct = lastValue(h, 'content-type');
  return ct !== null && /^application\/(?:[\w.+-]+\+)?json\b/i.test(ct.trim());
}

/**
 * The body part of a digest, fed as the body streams: length, SHA-256, a bounded snippet and, for
 * JSON bodies up to a size, a copy.
 */
export class BodyDigest {
  private len = 0;
  private readonly hash: Hash = sha256();
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

/** The framer's fields ([Name, value, ...], values already trimmed) in digest form: names lower-cased. */
export function digestHeaders(raw: string[]): string[] {
  for (let i = 0; i < raw.length; i += 2) raw[i] = raw[i].toLowerCase();
  return raw;
}
