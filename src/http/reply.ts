/**
 * The one HTTP/1.x reply framer. It reads one server-to-client byte stream and emits head / body /
 * end events; it keeps no body. The replay client (src/replay/h1-client.ts) and the digester of
 * production's answers (src/http/response.ts) both read answers through it, so the same bytes
 * get the same verdict on both sides of a shadow comparison.
 *
 * What a reply may be (RFC 9112, RFC 9110), decided here and nowhere else:
 * - Status line `HTTP/1.0` or `HTTP/1.1`, SP, three digits 100-999, then the end of the line or
 *   SP and a reason phrase. Other versions are malformed, as soon as the first bytes show it (a
 *   server speaking another protocol fails at once, not at a timeout).
 * - Line ends: CRLF, or a bare LF (§2.2 lets a recipient accept it; clients do). A CR anywhere
 *   else (a bare CR) is malformed, as is any CTL but HTAB, or DEL, in a status or field line
 *   (RFC 9110 §5.5: CR and NUL make a field invalid). The request parser refuses bare LF: there
 *   the question is what the server read; here it is what a client would.
 * - Empty lines before a status line are skipped (§2.2).
 * - Field names are tokens, followed by the colon without whitespace (§5.1). obs-fold (a line
 *   starting with SP or HTAB) continues the previous field and is replaced by one SP (§5.2: what a
 *   user agent must do); whitespace before the first field is malformed (§2.2).
 * - 1xx other than 101 are interim: skipped, the final answer follows. 101, and 2xx to CONNECT,
 *   end HTTP/1.x on the connection (RFC 9110 §15.2.2, §9.3.6): the head is the answer and
 *   whatever follows is ignored. HEAD, 204 and 304 end with the head (§6.3 item 1).
 * - Transfer-Encoding wins over Content-Length (§6.3 item 3), and the Content-Length is then
 *   ignored even if invalid. Such an answer "ought to be handled as an error": we read it, but
 *   the connection is not used again. A final coding other than chunked, or Transfer-Encoding in
 *   an HTTP/1.0 answer (§6.1: faulty framing), reads until close (§6.3 item 4).
 * - Content-Length: one value, or a list or repetition of identical values ("5, 5"; RFC 9110
 *   §8.6); anything else without Transfer-Encoding is malformed (§6.3 item 5). Neither: the body
 *   runs until the close (§6.3 item 7).
 * - Chunks as RFC 9112 §7.1 writes them (size, extensions as grammar.ts checks them), lines of at
 *   most 4 KiB; trailer fields are checked like header fields and not kept, 64 KiB at most.
 * - The head (status line to empty line) may be `maxHeadBytes` long (64 KiB by default).
 * - A connection is persistent after an answer only when it was HTTP/1.1, had no
 *   `Connection: close`, was not read until close, did not switch, and its body was not chunked
 *   despite a Content-Length (§9.3). HTTP/1.0 keep-alive is not used.
 * A limit fails at the byte that passes it, so how the stream was cut never changes a verdict.
 */
import {
  BODY_CHUNKED,
  BODY_CLOSE,
  BODY_INVALID,
  BODY_LENGTH,
  BODY_NONE,
  BODY_SWITCH,
  fieldLine,
  type FieldBounds,
  hasToken,
  parseChunkLine,
  parseContentLength,
  replyFraming,
  validValueBytes,
} from './grammar.js';

/** Why a reply stream could not be framed; the framer stops at the first. */
export type ReplyError = 'malformed' | 'head_too_large';

/** The head of a final answer (or of a 101), as onHead() sees it. */
export interface ReplyHead {
  readonly status: number;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  readonly minorVersion: number;
  /** How the body is delimited: one of grammar.ts's BODY_* values (never BODY_INVALID). */
  readonly framing: number;
  /**
   * The header fields, flat: [name0, value0, ...]; names as sent, values without surrounding
   * whitespace, obs-fold replaced by SP. Reads the head's bytes: valid during onHead() only.
   */
  fields(): string[];
}

export interface ReplyEvents {
  /** Method of the request this answer is for (HEAD and CONNECT change framing), null if unknown. */
  requestMethod(): string | null;
  onHead(head: ReplyHead): void;
  /** Body bytes b[start..end) with chunked framing removed; the view is valid during the call. */
  onBody(b: Buffer, start: number, end: number): void;
  /** The answer is complete; `persistent`: the connection may carry another one. */
  onEnd(persistent: boolean): void;
  /** The stream cannot be framed; nothing more is emitted. */
  onError(reason: ReplyError, detail: string): void;
}

export interface ReplyFramerOptions {
  /** Largest status line + header section (default 64 KiB). */
  maxHeadBytes?: number;
}

const HEAD = 0;
const BODY = 1; // Content-Length
const CHUNK_LINE = 2;
const CHUNK_DATA = 3;
const CHUNK_END = 4; // the line end after chunk data
const TRAILER = 5;
const UNTIL_CLOSE = 6;
const SWITCHED = 7; // not HTTP/1.x any more: ignore the rest
const DEAD = 8; // after an error, a stop() or the end

const LF = 10;
const CR = 13;
const SP = 32;
const HTAB = 9;
const MAX_CHUNK_LINE = 4096;
const MAX_TRAILER = 64 * 1024;
const KEEP_STASH = 16 * 1024;
/** "HTTP/1.x " (x checked apart). */
const HTTP1_SP = Buffer.from('HTTP/1.0 ', 'latin1');

export class ReplyFramer implements ReplyHead {
  status = 0;
  minorVersion = 1;
  framing = BODY_NONE;

  private state = HEAD;
  private readonly maxHead: number;
  private remaining = 0;
  private persistent = true;
  private crSeen = false;
  /** The status line of the head being read was checked (checkStatus). */
  private statusOk = false;
  /** Bytes of the answer in progress (interim answers reset it). */
  private msgBytes = 0;
  /** Answers ended, and interim heads passed, so far: push() stops after an answer ends. */
  private ended = 0;
  private boundaries = 0;

  // A head, chunk line or trailer section that spans pushes.
  private stash: Buffer | null = null;
  private stashLen = 0;
  /** Where the last incomplete line of the stash starts. */
  private stashScan = 0;
  /** Set by sectionEnd(): the start of the last incomplete line. */
  private scan = 0;

  // The head being emitted, for fields().
  private headSrc: Buffer | null = null;
  private headFrom = 0;
  private headTo = 0;
  private readonly field: FieldBounds = { nameEnd: 0, valueStart: 0, valueEnd: 0 };

  constructor(private readonly events: ReplyEvents, opts: ReplyFramerOptions = {}) {
    this.maxHead = opts.maxHeadBytes ?? 64 * 1024;
  }

  /** Bytes held for a head, chunk line or trailer that spans pushes. */
  get bufferedBytes(): number {
    return this.stashLen;
  }

  /** Bytes of the answer in progress (0 between answers and once stopped). */
  get pendingBytes(): number {
    return this.state >= SWITCHED ? 0 : this.msgBytes;
  }

  /** Nothing more will be framed: switched, failed, stopped or ended. */
  get stopped(): boolean {
    return this.state >= SWITCHED;
  }

  /**
   * Frames d[p..n) and returns where it stopped: at n, or right after an answer ended (the
   * caller pushes the rest if it wants the next answer). Once stopped, consumes everything.
   */
  push(d: Buffer, p: number, n: number): number {
    while (p < n) {
      const before = p;
      const b0 = this.boundaries;
      const e0 = this.ended;
      switch (this.state) {
        case HEAD: p = this.onHead(d, p, n); break;
        case BODY: p = this.onBody(d, p, n); break;
        case CHUNK_LINE: p = this.onChunkLine(d, p, n); break;
        case CHUNK_DATA: p = this.onChunkData(d, p, n); break;
        case CHUNK_END: p = this.onChunkEnd(d, p, n); break;
        case TRAILER: p = this.onTrailer(d, p, n); break;
        case UNTIL_CLOSE:
          this.events.onBody(d, p, n);
          p = n;
          break;
        default: return n;
      }
      if (p < 0) return n; // failed: stopped
      if (this.boundaries === b0) this.msgBytes += p - before;
      if (this.ended !== e0) return p;
    }
    return p;
  }

  /** Can `bytes` lost from the stream be stepped over in sync (they fall inside a body of known length)? */
  canStepOver(bytes: number): boolean {
    return (this.state === BODY || this.state === CHUNK_DATA) && this.remaining >= bytes;
  }

  /** Steps over `bytes` that canStepOver() accepted: no body event for them. */
  stepOver(bytes: number): void {
    this.remaining -= bytes;
    this.msgBytes += bytes;
    if (this.remaining > 0) return;
    if (this.state === BODY) this.endAnswer();
    else this.toChunkEnd();
  }

  /** Frame nothing more (a hole that cannot be stepped over, or tainted bytes). */
  stop(): void {
    this.state = DEAD;
    this.dropStash();
  }

  /**
   * The stream ended: a body read until close is complete (onEnd). False when an answer was cut
   * short (also a partial head); true between answers, after a switch or after an error.
   */
  end(): boolean {
    const st = this.state;
    let clean = st >= SWITCHED || (st === HEAD && this.stashLen === 0);
    if (st === UNTIL_CLOSE) {
      this.persistent = false;
      this.endAnswer();
      clean = true;
    }
    this.stop();
    return clean;
  }

  fields(): string[] {
    const b = this.headSrc!;
    const e = this.headTo;
    const out: string[] = [];
    let p = b.indexOf(LF, this.headFrom) + 1;
    while (p < e) {
      const lf = b.indexOf(LF, p);
      const le = lf > p && b[lf - 1] === CR ? lf - 1 : lf;
      if (le === p) break;
      if (b[p] === SP || b[p] === HTAB) {
        const cont = trimmed(b, p, le);
        const last = out.length - 1;
        if (cont !== '') out[last] = out[last] === '' ? cont : `${out[last]} ${cont}`;
      } else {
        fieldLine(b, p, le, this.field);
        out.push(b.toString('latin1', p, this.field.nameEnd), b.toString('latin1', this.field.valueStart, this.field.valueEnd));
      }
      p = lf + 1;
    }
    return out;
  }

  // ---- states ----

  private onHead(d: Buffer, p: number, n: number): number {
    if (this.stashLen === 0) {
      while (p < n && (d[p] === CR || d[p] === LF)) p++;
      if (p === n) return n;
      this.statusOk = false;
      if (!this.checkStatus(d, p, n, p)) return this.fail('malformed', 'not an HTTP/1.x status line');
      const end = this.sectionEnd(d, p, n);
      if (end >= 0) {
        if (end - p > this.maxHead) return this.fail('head_too_large', 'answer head too large');
        this.readHead(d, p, end);
        return end;
      }
      if (n - p > this.maxHead) return this.fail('head_too_large', 'answer head too large');
      return this.stashSection(d, p, n);
    }
    const old = this.stashLen;
    const end = this.growSection(d, p, n, this.maxHead);
    if (!this.checkStatus(this.stash!, 0, this.stashLen, old)) return this.fail('malformed', 'not an HTTP/1.x status line');
    if (end === -1) return n;
    if (end < 0) return this.fail('head_too_large', 'answer head too large');
    this.readHead(this.takeStash(), 0, end);
    return p + (end - old);
  }

  private onBody(d: Buffer, p: number, n: number): number {
    const take = Math.min(this.remaining, n - p);
    this.events.onBody(d, p, p + take);
    this.remaining -= take;
    if (this.remaining === 0) this.endAnswer();
    return p + take;
  }

  private onChunkLine(d: Buffer, p: number, n: number): number {
    let lf = d.indexOf(LF, p);
    if (lf >= n) lf = -1;
    if (this.stashLen === 0) {
      if (lf >= 0) {
        if (lf + 1 - p > MAX_CHUNK_LINE) return this.fail('malformed', 'chunk line too long');
        this.chunkLine(d, p, lf);
        return lf + 1;
      }
      if (n - p >= MAX_CHUNK_LINE) return this.fail('malformed', 'chunk line too long');
      this.append(d, p, n);
      return n;
    }
    // The line with its LF may be MAX_CHUNK_LINE long; without an LF yet, it must be shorter.
    const stop = lf >= 0 ? lf + 1 : n;
    const len = this.stashLen + (stop - p);
    if (len > MAX_CHUNK_LINE || (lf < 0 && len === MAX_CHUNK_LINE)) return this.fail('malformed', 'chunk line too long');
    this.append(d, p, stop);
    if (lf < 0) return n;
    this.chunkLine(this.takeStash(), 0, len - 1);
    return stop;
  }

  private onChunkData(d: Buffer, p: number, n: number): number {
    const take = Math.min(this.remaining, n - p);
    this.events.onBody(d, p, p + take);
    this.remaining -= take;
    if (this.remaining === 0) this.toChunkEnd();
    return p + take;
  }

  private onChunkEnd(d: Buffer, p: number, _n: number): number {
    const c = d[p];
    if (c === LF) {
      this.state = CHUNK_LINE;
      return p + 1;
    }
    if (c === CR && !this.crSeen) {
      this.crSeen = true;
      return p + 1;
    }
    return this.fail('malformed', 'chunk data not followed by a line end');
  }

  private onTrailer(d: Buffer, p: number, n: number): number {
    if (this.stashLen === 0) {
      const end = this.sectionEnd(d, p, n);
      if (end >= 0) {
        if (end - p > MAX_TRAILER) return this.fail('head_too_large', 'trailer section too large');
        return this.readTrailer(d, p, end) ? end : -1;
      }
      if (n - p > MAX_TRAILER) return this.fail('head_too_large', 'trailer section too large');
      return this.stashSection(d, p, n);
    }
    const old = this.stashLen;
    const end = this.growSection(d, p, n, MAX_TRAILER);
    if (end === -1) return n;
    if (end < 0) return this.fail('head_too_large', 'trailer section too large');
    return this.readTrailer(this.takeStash(), 0, end) ? p + (end - old) : -1;
  }

  // ---- heads and sections ----

  /** A complete head in b[s..e): the status line, the fields, and what frames the body. */
  private readHead(b: Buffer, s: number, e: number): void {
    const lf = b.indexOf(LF, s);
    const le = lf > s && b[lf - 1] === CR ? lf - 1 : lf;
    if (!this.statusOk && !this.statusLine(b, s, le)) return void this.fail('malformed', 'not an HTTP/1.x status line');
    const status = this.status;
    const f = this.readFields(b, lf + 1, e, status >= 200 || status === 101);
    if (f === null) return;
    if (status < 200 && status !== 101) {
      // Interim: answers nothing; the final answer follows on the same stream.
      this.msgBytes = 0;
      this.boundaries++;
      return;
    }
    const method = this.events.requestMethod();
    const framing = replyFraming(status, method, this.minorVersion, f.te, f.cl);
    if (framing === BODY_INVALID) return void this.fail('malformed', 'bad Content-Length');
    this.framing = framing;
    this.persistent = this.minorVersion === 1 && !f.close && framing !== BODY_CLOSE && framing !== BODY_SWITCH && !(framing === BODY_CHUNKED && f.cl !== -1);
    this.headSrc = b;
    this.headFrom = s;
    this.headTo = e;
    this.events.onHead(this);
    this.headSrc = null;
    if (this.state === DEAD) return; // stopped from onHead
    switch (framing) {
      case BODY_NONE: return this.endAnswer();
      case BODY_LENGTH:
        this.remaining = f.cl;
        this.state = BODY;
        return;
      case BODY_CHUNKED:
        this.state = CHUNK_LINE;
        return;
      case BODY_CLOSE:
        this.state = UNTIL_CLOSE;
        return;
      case BODY_SWITCH:
        this.endAnswer();
        this.state = SWITCHED;
        return;
    }
  }

  /**
   * Refuses a head that cannot be an answer as early as its bytes show it: its first bytes must
   * read `HTTP/1.0 ` or `HTTP/1.1 `, and its status line, once complete within the head limit,
   * must be valid. b[s..e) is the head so far; `from`: where to look for the status line's end.
   * So a server speaking another protocol fails at once, not after a timeout, however it is cut.
   */
  private checkStatus(b: Buffer, s: number, e: number, from: number): boolean {
    if (this.statusOk) return true;
    const k = Math.min(9, e - s);
    for (let i = 0; i < k; i++) {
      const c = b[s + i];
      if (i === 7 ? c !== 0x30 && c !== 0x31 : c !== HTTP1_SP[i]) return false;
    }
    const lf = b.indexOf(LF, from);
    if (lf < 0 || lf >= e || lf - s >= this.maxHead) return true; // not complete (yet, or within the limit)
    if (!this.statusLine(b, s, lf > s && b[lf - 1] === CR ? lf - 1 : lf)) return false;
    this.statusOk = true;
    return true;
  }

  /** `HTTP/1.x SP 3DIGIT [SP reason]` in b[s..e): sets status and minorVersion. */
  private statusLine(b: Buffer, s: number, e: number): boolean {
    if (
      e - s < 12 || b[s] !== 0x48 || b[s + 1] !== 0x54 || b[s + 2] !== 0x54 || b[s + 3] !== 0x50 || b[s + 4] !== 0x2f ||
      b[s + 5] !== 0x31 || b[s + 6] !== 0x2e || (b[s + 7] !== 0x30 && b[s + 7] !== 0x31) || b[s + 8] !== SP ||
      !digit(b[s + 9]) || b[s + 9] === 0x30 || !digit(b[s + 10]) || !digit(b[s + 11]) || (e > s + 12 && b[s + 12] !== SP)
    ) return false;
    if (!validValueBytes(b, s + 13, e)) return false;
    this.minorVersion = b[s + 7] - 0x30;
    this.status = (b[s + 9] - 0x30) * 100 + (b[s + 10] - 0x30) * 10 + (b[s + 11] - 0x30);
    return true;
  }

  /**
   * Checks the field lines of b[p..e) (up to the empty line) and, when `framing`, collects
   * Content-Length, Transfer-Encoding and Connection: close. Null after an error (reported).
   */
  private readFields(b: Buffer, p: number, e: number, framing: boolean): HeadFacts | null {
    const facts: HeadFacts = { cl: -1, te: null, close: false };
    const fb = this.field;
    // The framing field being read (its value may continue on obs-fold lines): kind and value.
    let kind = 0;
    let value = '';
    let any = false;
    while (p < e) {
      const lf = b.indexOf(LF, p);
      const le = lf > p && b[lf - 1] === CR ? lf - 1 : lf;
      if (le === p) break;
      const c = b[p];
      if (c === SP || c === HTAB) {
        if (!any || !validValueBytes(b, p, le)) return this.failNull('bad obs-fold line');
        const cont = kind !== 0 ? trimmed(b, p, le) : '';
        if (cont !== '') value = value === '' ? cont : `${value} ${cont}`;
      } else {
        if (!fieldLine(b, p, le, fb)) return this.failNull('bad header line');
        if (kind !== 0) note(facts, kind, value);
        any = true;
        kind = framing ? framingField(b, p, fb.nameEnd - p) : 0;
        if (kind !== 0) value = b.toString('latin1', fb.valueStart, fb.valueEnd);
      }
      p = lf + 1;
    }
    if (kind !== 0) note(facts, kind, value);
    return facts;
  }

  private readTrailer(b: Buffer, s: number, e: number): boolean {
    if (this.readFields(b, s, e, false) === null) return false;
    this.endAnswer();
    return true;
  }

  /**
   * Index after the empty line that ends the section whose lines start at `p` in b[..n), or -1
   * (then `scan` is where the last, incomplete, line starts). `from`: no LF before it in the line
   * at `p` (bytes already searched), so a head that arrives byte by byte is still read in linear time.
   */
  private sectionEnd(b: Buffer, p: number, n: number, from = p): number {
    while (p < n) {
      const c = b[p];
      if (c === LF) return p + 1;
      if (c === CR) {
        if (p + 1 === n) break;
        if (b[p + 1] === LF) return p + 2;
      }
      const lf = b.indexOf(LF, from > p ? from : p);
      if (lf < 0 || lf >= n) break;
      p = lf + 1;
    }
    this.scan = p;
    return -1;
  }

  /** Keeps d[p..n), the start of a section, and the line to scan from next time. */
  private stashSection(d: Buffer, p: number, n: number): number {
    this.stashScan = this.scan - p;
    this.append(d, p, n);
    return n;
  }

  /**
   * Adds d[p..n) to the stashed section, at most up to `max` bytes; the section's length when
   * it is complete, -1 when more is needed, -2 when it is longer than `max`.
   */
  private growSection(d: Buffer, p: number, n: number, max: number): number {
    const old = this.stashLen;
    const take = Math.min(n - p, max - old);
    this.append(d, p, p + take);
    const end = this.sectionEnd(this.stash!, this.stashScan, this.stashLen, old);
    if (end >= 0) return end;
    this.stashScan = this.scan;
    return take < n - p ? -2 : -1;
  }

  /** The stash, now complete, to read from; it is empty again (and let go when large). */
  private takeStash(): Buffer {
    const b = this.stash!;
    this.stashLen = 0;
    if (b.length > KEEP_STASH) this.stash = null;
    return b;
  }

  private append(d: Buffer, p: number, e: number): void {
    const need = this.stashLen + (e - p);
    if (this.stash === null || this.stash.length < need) {
      const nb = Buffer.allocUnsafe(Math.max(need, (this.stash?.length ?? 256) * 2));
      if (this.stash !== null && this.stashLen > 0) this.stash.copy(nb, 0, 0, this.stashLen);
      this.stash = nb;
    }
    d.copy(this.stash, this.stashLen, p, e);
    this.stashLen = need;
  }

  private dropStash(): void {
    this.stashLen = 0;
    if (this.stash !== null && this.stash.length > KEEP_STASH) this.stash = null;
  }

  // ---- helpers ----

  /** A chunk line b[s..lf) (lf: its LF): the next chunk, or the trailer after the last. */
  private chunkLine(b: Buffer, s: number, lf: number): void {
    const e = lf > s && b[lf - 1] === CR ? lf - 1 : lf;
    const size = parseChunkLine(b, s, e);
    if (size < 0) return void this.fail('malformed', 'bad chunk line');
    if (size === 0) {
      this.state = TRAILER;
      return;
    }
    this.remaining = size;
    this.state = CHUNK_DATA;
  }

  private toChunkEnd(): void {
    this.state = CHUNK_END;
    this.crSeen = false;
  }

  private endAnswer(): void {
    this.state = HEAD;
    this.msgBytes = 0;
    this.boundaries++;
    this.ended++;
    this.events.onEnd(this.persistent);
  }

  /** Stops and reports; returns -1, which push() takes as "consume the rest". */
  private fail(reason: ReplyError, detail: string): number {
    this.stop();
    this.events.onError(reason, detail);
    return -1;
  }

  private failNull(detail: string): null {
    this.fail('malformed', detail);
    return null;
  }
}

interface HeadFacts {
  /** -1: absent; -2: invalid or conflicting. */
  cl: number;
  te: string | null;
  close: boolean;
}

const F_CL = 1;
const F_TE = 2;
const F_CONN = 3;

/** Which framing field the name b[p..p+len) is, ignoring ASCII case (0: none). */
function framingField(b: Buffer, p: number, len: number): number {
  if (len === 14 && lowerIs(b, p, 'content-length')) return F_CL;
  if (len === 17 && lowerIs(b, p, 'transfer-encoding')) return F_TE;
  if (len === 10 && lowerIs(b, p, 'connection')) return F_CONN;
  return 0;
}

/** Adds one framing field's (unfolded) value to `f`. */
function note(f: HeadFacts, kind: number, v: string): void {
  if (kind === F_CL) {
    const n = parseContentLength(v);
    if (n < 0 || n > Number.MAX_SAFE_INTEGER || (f.cl >= 0 && n !== f.cl)) f.cl = -2;
    else if (f.cl !== -2) f.cl = n;
  } else if (kind === F_TE) f.te = f.te === null ? v : `${f.te},${v}`;
  else if (hasToken(v, 'close')) f.close = true;
}

function lowerIs(b: Buffer, p: number, name: string): boolean {
  for (let i = 0; i < name.length; i++) if ((b[p + i] | 0x20) !== name.charCodeAt(i)) return false;
  return true;
}

function digit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** b[p..e) without leading and trailing SP/HTAB, as latin1. */
function trimmed(b: Buffer, p: number, e: number): string {
  while (p < e && (b[p] === SP || b[p] === HTAB)) p++;
  while (e > p && (b[e - 1] === SP || b[e - 1] === HTAB)) e--;
  return b.toString('latin1', p, e);
}
