/**
 * Lines inside a body (chunk-size lines, trailer fields), read up to their LF across pushes: a
 * line within one push is handed back as a view of it, one that spans pushes is copied together.
 */
const LF = 10;

export class LineReader {
  private buf: Buffer | null = null;
  /** Bytes of an unfinished line held in `buf`. */
  len = 0;
  /** After read(): the complete line is src[s..e) and e is its LF; src is null if the line is unfinished. */
  src: Buffer | null = null;
  s = 0;
  e = 0;
  /** After read(): the line would exceed the limit. */
  over = false;

  /**
   * Consumes d[p..) up to and including the next LF and returns the position after it. A line
   * over `limit` stops exactly one byte past the limit, wherever the push boundaries fall.
   */
  read(d: Buffer, p: number, limit: number): number {
    this.src = null;
    this.over = false;
    const i = d.indexOf(LF, p);
    const stop = i < 0 ? d.length : i + 1;
    if (this.len + stop - p > limit) {
      this.over = true;
      const over = p + limit - this.len + 1;
      this.len = 0;
      return over;
    }
    if (i >= 0 && this.len === 0) {
      this.src = d;
      this.s = p;
      this.e = i;
      return stop;
    }
    const need = this.len + stop - p;
    if (this.buf === null || this.buf.length < need) {
      const nb = Buffer.allocUnsafeSlow(Math.max(need, 256, (this.buf?.length ?? 0) * 2));
      if (this.buf !== null) this.buf.copy(nb, 0, 0, this.len);
      this.buf = nb;
    }
    d.copy(this.buf, this.len, p, stop);
    this.len = need;
    if (i >= 0) {
      this.src = this.buf;
      this.s = 0;
      this.e = need - 1;
      this.len = 0; // buf stays valid until the next read
    }
    return stop;
  }

  /** The connection ended: let the buffer go. */
  release(): void {
    this.len = 0;
    this.buf = null;
  }
}
