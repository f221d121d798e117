/**
 * The request line (RFC 9112 §3: `method SP target SP HTTP/1.[01] CRLF`), scanned byte by byte
 * and across pushes, so that garbage is refused at its first bad byte. Strict (a request must
 * start here): leading empty lines are skipped and the method is any token. Otherwise (a resync
 * candidate) the method is SCAN_METHOD bytes. When each applies is a rule of parser.ts.
 */
import { SCAN_METHOD, TCHAR } from './grammar.js';

/**
 * How scan() ended: the push ended inside the line (`need`), the line is complete (`accept`), the
 * byte at the returned position cannot continue it (`reject`), the line passes the limit
 * (`long`), or it is `PRI * HTTP/2`, the HTTP/2 connection preface (`h2`).
 */
export type LineResult = 'need' | 'accept' | 'reject' | 'long' | 'h2';

// Phases.
const PH_START = 0;
const PH_EMPTY_LF = 1; // strict only: CR of an empty line before the request line
const PH_METHOD = 2;
const PH_TARGET = 3;
const PH_VERSION = 4;
const PH_MINOR = 5;
const PH_CR = 6;
const PH_LF = 7;

const MAX_METHOD = 20;
const CR = 13;
const LF = 10;
const SP = 32;
const HTTP1 = Buffer.from('HTTP/1.', 'latin1');
const PRI = 0x505249; // "PRI" packed, as `m3` holds it

export class RequestLineScanner {
  private ph = PH_START;
  methodLen = 0;
  targetLen = 0;
  private versionIdx = 0;
  minor = 1;
  /** First three method bytes packed, and the first target byte: enough to spot `PRI * HTTP/2.0`. */
  private m3 = 0;
  private t0 = 0;
  /** Where the line starts in the push last scanned; -1 when none of it is in that push. */
  begin = -1;
  result: LineResult = 'need';

  /** `PRI *`, the HTTP/2 preface's shape whatever the version. */
  get isPri(): boolean {
    return this.methodLen === 3 && this.m3 === PRI && this.targetLen === 1 && this.t0 === 42;
  }

  /** Forget a line in progress. */
  reset(): void {
    this.ph = PH_START;
  }

  /**
   * Where the target's bytes from d[p] end: a tight loop, targets are the long part of the line.
   * obs-text (>= 0x80) is kept as is. Stops one byte past `maxTarget` (with `tlen` bytes before
   * this push), so the failure point does not depend on push sizes.
   */
  private targetEnd(d: Buffer, p: number, tlen: number, maxTarget: number): number {
    const lim = Math.min(d.length, p + maxTarget - tlen + 1);
    let q = p;
    if (tlen === 0 && q < lim) this.t0 = d[q];
    while (q < lim) {
      const x = d[q];
      if (x > SP && x !== 127) q++;
      else break;
    }
    return q;
  }

  /** Scans d[p..) and returns where it stopped; the outcome is in `result`, the line's start in `begin`. */
  scan(d: Buffer, p: number, strict: boolean, maxLine: number): number {
    const n = d.length;
    const methodChars = strict ? TCHAR : SCAN_METHOD;
    let ph = this.ph;
    let mlen = this.methodLen;
    let tlen = this.targetLen;
    let vi = this.versionIdx;
    let begin = ph >= PH_METHOD ? p : -1;
    let result: LineResult = 'need';
    scan: while (p < n) {
      const c = d[p];
      switch (ph) {
        case PH_START:
          if (strict ? TCHAR[c] === 1 : c >= 65 && c <= 90) {
            ph = PH_METHOD;
            mlen = 1;
            this.m3 = c;
            begin = p++;
            break;
          }
          if (strict && c === CR) { ph = PH_EMPTY_LF; p++; break; }
          result = 'reject';
          break scan;
        case PH_EMPTY_LF:
          if (c === LF) { ph = PH_START; p++; break; }
          result = 'reject';
          break scan;
        case PH_METHOD:
          if (c === SP) { ph = PH_TARGET; tlen = 0; p++; break; }
          if (mlen < MAX_METHOD && methodChars[c] === 1) {
            if (mlen < 3) this.m3 = (this.m3 << 8) | c;
            mlen++;
            p++;
            break;
          }
          result = 'reject';
          break scan;
        case PH_TARGET: {
          const maxTarget = maxLine - 10 - mlen;
          const q = this.targetEnd(d, p, tlen, maxTarget);
          tlen += q - p;
          p = q;
          if (tlen > maxTarget) { result = 'long'; break scan; }
          if (p === n) break scan;
          if (d[p] === SP && tlen > 0) { ph = PH_VERSION; vi = 0; p++; break; }
          result = 'reject';
          break scan;
        }
        case PH_VERSION:
          if (c === HTTP1[vi]) { p++; if (++vi === HTTP1.length) ph = PH_MINOR; break; }
          // `PRI * HTTP/2`: the HTTP/2 connection preface.
          result = vi === 5 && c === 50 && mlen === 3 && this.m3 === PRI && tlen === 1 && this.t0 === 42 ? 'h2' : 'reject';
          break scan;
        case PH_MINOR:
          if (c === 48 || c === 49) { this.minor = c - 48; ph = PH_CR; p++; break; }
          result = 'reject';
          break scan;
        case PH_CR:
          if (c === CR) { ph = PH_LF; p++; break; }
          result = 'reject';
          break scan;
        default: // PH_LF
          if (c === LF) { p++; result = 'accept'; break scan; }
          result = 'reject';
          break scan;
      }
    }
    this.ph = result === 'need' ? ph : PH_START;
    this.methodLen = mlen;
    this.targetLen = tlen;
    this.versionIdx = vi;
    this.begin = begin;
    this.result = result;
    return p;
  }
}
