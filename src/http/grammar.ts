/**
 * HTTP/1.x grammar shared by the parsers (RFC 9110 §5, RFC 9112 §6-7): character classes,
 * list fields, Content-Length and Transfer-Encoding decisions, chunk extensions.
 */

/** RFC 9110 tchar. */
export const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TCHAR[c.charCodeAt(0)] = 1;
}

/** Hex digit values, -1 for other bytes. */
export const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX['0123456789abcdef'.charCodeAt(i)] = i;
  HEX['0123456789ABCDEF'.charCodeAt(i)] = i;
}

const SP = 32;
const HTAB = 9;

/** RFC 9110 OWS trim; String.trim() would also eat latin1 NBSP (0xA0), which is field content. */
export function trimOws(s: string): string {
  return s.replace(/^[ \t]+|[ \t]+$/g, '');
}

/** 1*DIGIT, or a comma list of identical ones ("5, 5"); -1 if invalid or the values differ. */
export function parseContentLength(v: string): number {
  let result = -1;
  for (const el of v.split(',')) {
    const digits = trimOws(el);
    if (!/^[0-9]+$/.test(digits)) return -1;
    // Beyond 2^53 the exact value does not matter: it is over any body limit.
    const n = digits.length > 15 ? Number.MAX_SAFE_INTEGER + 1 : Number(digits);
    if (result >= 0 && n !== result) return -1;
    result = n;
  }
  return result;
}

/** Is `token` an element of the comma-separated list `v` (case-insensitive)? */
export function hasToken(v: string, token: string): boolean {
  for (const el of v.split(',')) if (trimOws(el).toLowerCase() === token) return true;
  return false;
}

/** Transfer-Encoding list whose last coding is chunked, applied once, no empty elements. */
export function chunkedLast(te: string): boolean {
  const codings = te.split(',').map((s) => trimOws(s).toLowerCase());
  if (codings.some((c) => c === '')) return false;
  return codings.indexOf('chunked') === codings.length - 1;
}

/** chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ) in src[i..e). */
export function validChunkExt(src: Buffer, i: number, e: number): boolean {
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
