/**
 * HTTP/1.x grammar shared by the request parser and the reply framer (RFC 9110 §5, RFC 9112
 * §2-7): character classes, field lines, list fields, Content-Length, chunk lines, and the body
 * framing decisions of RFC 9112 §6.3 for requests and for replies. Both directions use the same
 * grammar; where the reply side is more lenient (bare LF, obs-fold) is stated in reply.ts.
 */

/** RFC 9110 tchar. */
export const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TCHAR[c.charCodeAt(0)] = 1;
}

/**
 * Method bytes a resync accepts (UPPERCASE letters, `-`, `_`): narrower than tchar, so that body
 * bytes are less often taken for a request line.
 */
export const SCAN_METHOD = new Uint8Array(256);
for (const c of '-_ABCDEFGHIJKLMNOPQRSTUVWXYZ') SCAN_METHOD[c.charCodeAt(0)] = 1;

/** Bytes a field value may hold (RFC 9110 §5.5): HTAB, SP, VCHAR, obs-text; no other CTL, no DEL. */
const VALUE_BYTE = new Uint8Array(256).fill(1);
for (let c = 0; c < 32; c++) if (c !== 9) VALUE_BYTE[c] = 0;
VALUE_BYTE[127] = 0;

/** Hex digit values, -1 for other bytes. */
export const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX['0123456789abcdef'.charCodeAt(i)] = i;
  HEX['0123456789ABCDEF'.charCodeAt(i)] = i;
}

const SP = 32;
const HTAB = 9;

function isOws(c: number): boolean {
  return c === SP || c === HTAB;
}

/** RFC 9110 OWS trim; String.trim() would also eat latin1 NBSP (0xA0), which is field content. */
export function trimOws(s: string): string {
  return s.replace(/^[ \t]+|[ \t]+$/g, '');
}

/** Is `s` a token (RFC 9110 §5.6.2): a field name, a method, a connection option? */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (TCHAR[s.charCodeAt(i)] !== 1) return false;
  return true;
}

/** A field value RFC 9110 §5.5 allows: no CTL but HTAB, no DEL; obs-text (0x80-0xFF) is fine. */
export function isFieldValue(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (VALUE_BYTE[s.charCodeAt(i)] !== 1) return false;
  return true;
}

/** Does src[s..e) hold only bytes a field value may hold (as isFieldValue)? */
export function validValueBytes(src: Uint8Array, s: number, e: number): boolean {
  for (let i = s; i < e; i++) if (VALUE_BYTE[src[i]] === 0) return false;
  return true;
}

/** Where the parts of a field line are, as fieldLine() found them. */
export interface FieldBounds {
  nameEnd: number;
  valueStart: number;
  valueEnd: number;
}

/**
 * `token ":" OWS value OWS` in src[s..e) (the line without its end): sets `out` and returns true.
 * Refuses an empty or non-token name, whitespace before the colon or at the start (obs-fold), and
 * a CTL other than HTAB or a DEL in the value (which covers a bare CR and NUL, RFC 9110 §5.5).
 */
export function fieldLine(src: Uint8Array, s: number, e: number, out: FieldBounds): boolean {
  let j = s;
  while (j < e && TCHAR[src[j]] === 1) j++;
  if (j === s || j === e || src[j] !== 58) return false;
  let vs = j + 1;
  for (let k = vs; k < e; k++) if (VALUE_BYTE[src[k]] === 0) return false;
  while (vs < e && (src[vs] === SP || src[vs] === HTAB)) vs++;
  let ve = e;
  while (ve > vs && (src[ve - 1] === SP || src[ve - 1] === HTAB)) ve--;
  out.nameEnd = j;
  out.valueStart = vs;
  out.valueEnd = ve;
  return true;
}

/**
 * 1*DIGIT, or a comma list of identical ones ("5, 5", RFC 9110 §8.6); -1 if invalid (an empty
 * element included) or the values differ. Beyond 15 digits the value is 2^53: over any limit.
 */
export function parseContentLength(v: string): number {
  let result = -1;
  const n = v.length;
  let i = 0;
  for (;;) {
    while (i < n && isOws(v.charCodeAt(i))) i++;
    const ds = i;
    let x = 0;
    for (; i < n; i++) {
      const d = v.charCodeAt(i) - 48;
      if (d < 0 || d > 9) break;
      x = x * 10 + d;
    }
    if (i === ds) return -1;
    if (i - ds > 15) x = Number.MAX_SAFE_INTEGER + 1;
    while (i < n && isOws(v.charCodeAt(i))) i++;
    if (result >= 0 && x !== result) return -1;
    result = x;
    if (i === n) return result;
    if (v.charCodeAt(i) !== 44) return -1;
    i++;
  }
}

/** Is `token` (lower case) an element of the comma-separated list `v`, ignoring ASCII case? */
export function hasToken(v: string, token: string): boolean {
  const n = v.length;
  const t = token.length;
  let i = 0;
  while (i <= n) {
    let e = v.indexOf(',', i);
    if (e < 0) e = n;
    let s = i;
    while (s < e && isOws(v.charCodeAt(s))) s++;
    let f = e;
    while (f > s && isOws(v.charCodeAt(f - 1))) f--;
    if (f - s === t) {
      let k = 0;
      while (k < t) {
        let c = v.charCodeAt(s + k);
        if (c >= 65 && c <= 90) c += 32;
        if (c !== token.charCodeAt(k)) break;
        k++;
      }
      if (k === t) return true;
    }
    i = e + 1;
  }
  return false;
}

/** Transfer-Encoding list whose last coding is chunked, applied once, no empty elements. */
export function chunkedLast(te: string): boolean {
  const codings = te.split(',').map((s) => trimOws(s).toLowerCase());
  if (codings.some((c) => c === '')) return false;
  return codings.indexOf('chunked') === codings.length - 1;
}

/**
 * A chunk line without its line end, src[s..e): `chunk-size [ chunk-ext ]` (RFC 9112 §7.1). The
 * size, or -1 when the line is invalid or the size is over 2^53.
 */
export function parseChunkLine(src: Uint8Array, s: number, e: number): number {
  let i = s;
  let size = 0;
  while (i < e) {
    const h = HEX[src[i]];
    if (h < 0) break;
    size = size * 16 + h;
    if (size > Number.MAX_SAFE_INTEGER) return -1;
    i++;
  }
  if (i === s || !validChunkExt(src, i, e)) return -1;
  return size;
}

/** chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ) in src[i..e). */
export function validChunkExt(src: Uint8Array, i: number, e: number): boolean {
  while (i < e) {
    while (i < e && (src[i] === SP || src[i] === HTAB)) i++;
    if (i === e || src[i] !== 59) return false;
    i++;
    while (i < e && (src[i] === SP || src[i] === HTAB)) i++;
    const ns = i;
    while (i < e && TCHAR[src[i]] === 1) i++;
    if (i === ns) return false;
    let j = i;
    while (j < e && (src[j] === SP || src[j] === HTAB)) j++;
    if (j < e && src[j] === 61) {
      i = j + 1;
      while (i < e && (src[i] === SP || src[i] === HTAB)) i++;
      if (i < e && src[i] === 34) {
        i++;
        for (;;) {
          if (i >= e) return false;
          const c = src[i];
          if (c === 34) { i++; break; }
          if (c === 92) {
            i++;
            if (i >= e) return false;
            const q = src[i];
            if ((q < SP && q !== HTAB) || q === 127) return false;
            i++;
          } else if ((c < SP && c !== HTAB) || c === 127) {
            return false;
          } else {
            i++;
          }
        }
      } else {
        const vs = i;
        while (i < e && TCHAR[src[i]] === 1) i++;
        if (i === vs) return false;
      }
    }
  }
  return true;
}

// ---- body framing (RFC 9112 §6.3) ----

/** How a message body is delimited. */
export const BODY_INVALID = -1;
/** The message ends with its header section. */
export const BODY_NONE = 0;
export const BODY_LENGTH = 1;
export const BODY_CHUNKED = 2;
/** The body runs until the server closes the connection (replies only). */
export const BODY_CLOSE = 3;
/** The connection leaves HTTP/1.x after the header section: 101, or 2xx to CONNECT (replies only). */
export const BODY_SWITCH = 4;

/**
 * A request's framing (§6.1, §6.3 items 3-6): Transfer-Encoding only on HTTP/1.1, ending in
 * chunked, and without Content-Length; `cl` is -1 when absent, -2 when invalid or conflicting.
 * A request cannot be read until close, so everything else is BODY_INVALID.
 */
export function requestFraming(minor: number, te: string | null, cl: number): number {
  if (te !== null) return cl !== -1 || minor === 0 || !chunkedLast(te) ? BODY_INVALID : BODY_CHUNKED;
  if (cl === -2) return BODY_INVALID;
  return cl > 0 ? BODY_LENGTH : BODY_NONE;
}

/**
 * A reply's framing for a final status or 101 (§6.3 items 1-7, RFC 9110 §9.3.6, §15.2.2). `method`
 * is the request's (null when unknown: taken as neither HEAD nor CONNECT); `cl` as above.
 */
export function replyFraming(status: number, method: string | null, minor: number, te: string | null, cl: number): number {
  if (status === 101 || (method === 'CONNECT' && status >= 200 && status < 300)) return BODY_SWITCH;
  if (method === 'HEAD' || status === 204 || status === 304) return BODY_NONE;
  // §6.1: Transfer-Encoding in HTTP/1.0 means the framing is faulty: only the close is certain.
  if (te !== null) return minor === 1 && chunkedLast(te) ? BODY_CHUNKED : BODY_CLOSE;
  if (cl === -2) return BODY_INVALID;
  if (cl === -1) return BODY_CLOSE;
  return cl > 0 ? BODY_LENGTH : BODY_NONE;
}
