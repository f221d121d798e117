/**
 * What the pcap and pcapng readers share. ChunkReader: a file streamed through one reused
 * buffer: fill() makes the next bytes
 * contiguous at buf[start..], skip() passes over bytes without keeping them, so a reader holds
 * at most one chunk whatever the file's size or its blocks' claims.
 */
import type { FileHandle } from 'node:fs/promises';
import { PcapFormatError } from '../errors.js';
import { LINK_TYPES, type LinkType } from './source.js';

export const CHUNK = 1 << 20;
/** Largest packet we accept; matches the ring's snap length. */
export const MAX_RECORD = 262144;

/** The link type, if decode knows it; else a PcapFormatError naming it. */
export function checkLinkType(path: string, linkType: number, where: string): LinkType {
  if (LINK_TYPES.has(linkType)) return linkType;
  const known = [...LINK_TYPES].map(([t, n]) => `${n} (${t})`).join(', ');
  throw new PcapFormatError(`${path}: ${where}link type ${linkType} is not supported; supported: ${known}`);
}

export class ChunkReader {
  readonly buf = Buffer.allocUnsafe(CHUNK);
  /** First unconsumed byte in buf. */
  start = 0;
  /** One past the last valid byte in buf. */
  end = 0;
  /** File offset of buf[start]. */
  offset = 0;
  /** Reads issued: the watchdog's sign of progress. */
  reads = 0;
  private eof = false;

  constructor(private readonly fh: FileHandle) {}

  get available(): number {
    return this.end - this.start;
  }

  /** Reads until at least `need` (at most CHUNK) bytes are buffered; false at end of file short of that. */
  async fill(need: number): Promise<boolean> {
    if (this.end - this.start >= need) return true;
    if (this.start > 0) {
      this.buf.copyWithin(0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    while (!this.eof && this.end < need) {
      const { bytesRead } = await this.fh.read(this.buf, this.end, this.buf.length - this.end, null);
      this.reads++;
      if (bytesRead === 0) this.eof = true;
      this.end += bytesRead;
    }
    return this.end - this.start >= need;
  }

  /** Marks `n` buffered bytes as used. */
  consume(n: number): void {
    this.start += n;
    this.offset += n;
  }

  /** Passes over `n` bytes, buffered or not; false if the file ends first. */
  async skip(n: number): Promise<boolean> {
    let left = n;
    for (;;) {
      const take = Math.min(left, this.end - this.start);
      this.consume(take);
      left -= take;
      if (left === 0) return true;
      if (this.eof) return false;
      this.start = this.end = 0;
      const { bytesRead } = await this.fh.read(this.buf, 0, this.buf.length, null);
      this.reads++;
      if (bytesRead === 0) this.eof = true;
      this.end = bytesRead;
    }
  }
}
