/**
 * The body of the request in progress. Pieces are views into the current push while it lasts;
 * at its end (own()) they are copied out, so a body is copied once, and only as far as needed.
 */
const EMPTY = Buffer.alloc(0);

export class BodyParts {
  /** Body pieces; those from index `viewsFrom` on are views into the current push. */
  private readonly parts: Buffer[] = [];
  private viewsFrom = 0;
  len = 0;

  add(d: Buffer, p: number, n: number): void {
    this.parts.push(d.subarray(p, p + n));
    this.len += n;
  }

  clear(): void {
    this.parts.length = 0;
    this.viewsFrom = 0;
    this.len = 0;
  }

  /** End of a push: copy the views out of the caller's buffer. */
  own(): void {
    const parts = this.parts;
    const k = this.viewsFrom;
    if (parts.length > k) {
      const owned = parts.length - k === 1 ? Buffer.from(parts[k]) : Buffer.concat(parts.slice(k));
      parts.length = k;
      parts.push(owned);
      this.viewsFrom = parts.length;
    }
  }

  /** The whole body as one buffer the request can keep. */
  whole(): Buffer {
    const parts = this.parts;
    if (parts.length === 0) return EMPTY;
    if (parts.length === 1) return this.viewsFrom === 0 ? Buffer.from(parts[0]) : parts[0];
    return Buffer.concat(parts, this.len);
  }
}
