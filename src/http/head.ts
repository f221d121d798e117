/**
 * A request's head: the request line and header section gathered across pushes, the end of the
 * section found (also when its empty line is split between pushes), and the header fields read
 * with what the parser needs from them (framing, Connection, Upgrade, Expect); the target put in
 * origin form.
 */
import { fieldLine, type FieldBounds, hasToken, parseContentLength } from './grammar.js';
import type { HttpDropReason } from './types.js';

const CR = 13;
const LF = 10;
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
// Keep small buffers between requests; big ones go back to the GC.
const KEEP_BUFFER = 16 * 1024;

/** Connection options (HeadFields.conn). */
export const CONN_CLOSE = 1;
export const CONN_KEEP_ALIVE = 2;
export const CONN_UPGRADE = 4;

/** What the parser needs from a header section besides the fields themselves. */
export interface HeadFields {
  headers: string[];
  /** Content-Length, -1 if absent. */
  cl: number;
  /** An invalid Content-Length, or two that differ. */
  badLength: boolean;
  /** Transfer-Encoding values joined, null if absent. */
  te: string | null;
  /** Connection options seen (CONN_*). */
  conn: number;
  upgrade: boolean;
  expect: boolean;
}

function noteField(f: HeadFields, name: string, value: string): void {
  switch (name.length) {
    case 14:
      if (name.toLowerCase() === 'content-length') {
        const v = parseContentLength(value);
        if (v < 0 || (f.cl >= 0 && v !== f.cl)) f.badLength = true;
        else f.cl = v;
      }
      break;
    case 17:
      if (name.toLowerCase() === 'transfer-encoding') f.te = f.te === null ? value : `${f.te},${value}`;
      break;
    case 10:
      if (name.toLowerCase() === 'connection') {
        if (hasToken(value, 'close')) f.conn |= CONN_CLOSE;
        if (hasToken(value, 'keep-alive')) f.conn |= CONN_KEEP_ALIVE;
        if (hasToken(value, 'upgrade')) f.conn |= CONN_UPGRADE;
      }
      break;
    case 7:
      if (name.toLowerCase() === 'upgrade') f.upgrade = true;
      break;
    case 6:
      if (name.toLowerCase() === 'expect' && hasToken(value, '100-continue')) f.expect = true;
      break;
  }
}

/**
 * The header fields of src[le..he) (from the end of the request line to after the empty line),
 * or why the section is refused: a bare LF or CR, obs-fold, a bad name or a CTL in a value
 * (http_malformed), more than `maxCount` fields (http_headers_too_large).
 */
export function readFields(src: Buffer, le: number, he: number, maxCount: number, fb: FieldBounds): HeadFields | HttpDropReason {
  const f: HeadFields = { headers: [], cl: -1, badLength: false, te: null, conn: 0, upgrade: false, expect: false };
  const headers = f.headers;
  let p = le;
  const last = he - 2;
  while (p < last) {
    const i = src.indexOf(LF, p);
    const cr = i - 1;
    if (cr < p || src[cr] !== CR || !fieldLine(src, p, cr, fb)) return 'http_malformed';
    if (headers.length >= 2 * maxCount) return 'http_headers_too_large';
    const name = src.toString('latin1', p, fb.nameEnd);
    const value = src.toString('latin1', fb.valueStart, fb.valueEnd);
    headers.push(name, value);
    noteField(f, name, value);
    p = i + 1;
  }
  return f;
}

/** An absolute-form http(s) target: authority, then path-abempty [ "?" query ]. */
const ABSOLUTE_HTTP = /^https?:\/\/([^/?#]*)(.*)$/is;

/** A request target as replayed: origin form, and the authority an absolute-form target named. */
export interface RequestTarget {
  target: string;
  authority: string | undefined;
}

/**
 * Sets `out` to the request target in origin form: an absolute-form http(s) target (RFC 9112
 * §3.2.2) loses its scheme and authority to `out.authority`, any other form is kept as is. False
 * for an empty authority or one with userinfo (RFC 9110 §4.2.1, §4.2.4).
 */
export function originForm(method: string, target: string, out: RequestTarget): boolean {
  out.target = target;
  out.authority = undefined;
  const abs = ABSOLUTE_HTTP.exec(target);
  if (abs === null) return true;
  const authority = abs[1];
  if (authority === '' || authority.includes('@')) return false;
  out.authority = authority;
  const rest = abs[2];
  // RFC 9112 §3.2.4: OPTIONS for the whole server is forwarded in asterisk-form.
  if (rest === '' && method === 'OPTIONS') out.target = '*';
  else out.target = rest === '' || rest[0] !== '/' ? `/${rest}` : rest;
  return true;
}

/**
 * The head of the request in progress. When the whole request line is in the current push (the
 * common case) only its bounds there are kept (`fast`); bytes are copied into `buf` only once the
 * head spans pushes.
 */
export class HeadBuffer {
  /** Request line + header section so far, when they span pushes. */
  buf: Buffer | null = null;
  len = 0;
  /** The request line incl. CRLF, at the start of buf. */
  reqLineLen = 0;
  /** The whole request line is in the current push, at d[start..lineEnd). */
  fast = false;
  start = 0;
  lineEnd = 0;

  append(d: Buffer, s: number, e: number): void {
    const need = this.len + e - s;
    if (this.buf === null || this.buf.length < need) {
      const nb = Buffer.allocUnsafeSlow(Math.max(need, 1024, (this.buf?.length ?? 0) * 2));
      if (this.buf !== null) this.buf.copy(nb, 0, 0, this.len);
      this.buf = nb;
    }
    d.copy(this.buf, this.len, s, e);
    this.len = need;
  }

  /** Header section bytes buffered so far (after the request line). */
  get sectionSoFar(): number {
    return this.fast ? 0 : this.len - this.reqLineLen;
  }

  /** Where the head ends in d (just after its empty line), searching from p; -1 if not in d. */
  endIn(d: Buffer, p: number): number {
    if (this.fast) {
      // Searching from the request line's CRLF also finds an empty header section.
      const i = d.indexOf(CRLFCRLF, this.lineEnd - 2);
      return i < 0 ? -1 : i + 4;
    }
    const hb = this.buf!;
    const hl = this.len;
    // A terminator split across pushes: k of its bytes are already buffered.
    for (let k = Math.min(3, hl - this.reqLineLen + 2); k >= 1; k--) {
      if (d.length - p < 4 - k) continue;
      let ok = true;
      for (let j = 0; j < 4 && ok; j++) ok = (j < k ? hb[hl - k + j] : d[p + j - k]) === CRLFCRLF[j];
      if (ok) return p + 4 - k;
    }
    const i = d.indexOf(CRLFCRLF, p);
    return i < 0 ? -1 : i + 4;
  }

  /** Between requests: empty, and a big buffer is let go. */
  clear(): void {
    this.len = 0;
    this.fast = false;
    if (this.buf !== null && this.buf.length > KEEP_BUFFER) this.buf = null;
  }
}

/** `Upgrade: h2c` alone, with HTTP2-Settings (RFC 7540 §3.2). */
export function asksH2c(h: string[]): boolean {
  let up = false;
  let settings = false;
  for (let i = 0; i < h.length; i += 2) {
    const n = h[i].toLowerCase();
    if (n === 'upgrade') up = h[i + 1].toLowerCase() === 'h2c';
    else if (n === 'http2-settings') settings = true;
  }
  return up && settings;
}
