/**
 * What the pcap and pcapng readers share. ChunkReader: a file streamed through one reused
 * buffer: fill() makes the next bytes
 * contiguous at buf[start..], skip() passes over bytes without keeping them, so a reader holds
 * at most one chunk whatever the file's size or its blocks' claims. openCapture: a file as
 * bytes, gunzipped on the fly when it starts with the gzip magic (rotated recordings are often
 * compressed); captureFiles: a path or a directory of rotated files, in order.
 */
import { createReadStream } from 'node:fs';
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { CaptureError, PcapFormatError } from '../errors.js';
import { LINK_TYPES, type LinkType } from './source.js';

/** The part of a FileHandle the reader uses: gunzip streams offer it too. */
export interface ByteSource {
  read(buf: Buffer, offset: number, length: number, position: null): Promise<{ bytesRead: number }>;
}

export const CHUNK = 1 << 20;

/**
 * Called with each frame's capture time (µs) before it is delivered; a promise holds the frame
 * back (timed replay, or a destination that is behind) with the buffer untouched meanwhile.
 */
export type Pace = (tsUs: number | undefined) => Promise<void> | null;
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

  constructor(private readonly fh: ByteSource) {}

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

const GZIP_MAGIC = 0x1f8b;

/** One capture file's bytes, decompressed if it is gzip; close() releases it. */
export async function openCapture(path: string): Promise<{ bytes: ByteSource; compressed: boolean; close(): Promise<void> }> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw new CaptureError(`cannot open pcap file ${path}: ${(e as Error).message}`, undefined, { cause: e });
  }
  const head = Buffer.alloc(2);
  const { bytesRead } = await fh.read(head, 0, 2, 0);
  if (bytesRead < 2 || head.readUInt16BE(0) !== GZIP_MAGIC) return { bytes: fh, compressed: false, close: () => fh.close() };
  await fh.close();
  const z = new GunzipSource(path);
  return { bytes: z, compressed: true, close: async () => z.close() };
}

/** A gzip file (one member or several, as a rotating writer appends them) read as its decompressed bytes. */
class GunzipSource implements ByteSource {
  private readonly it: AsyncIterator<Buffer>;
  private readonly z = createGunzip();
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly path: string) {
    pipeline(createReadStream(path), this.z, () => {});
    this.it = this.z[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  async read(buf: Buffer, offset: number, length: number): Promise<{ bytesRead: number }> {
    if (this.pending.length === 0) {
      let next: IteratorResult<Buffer>;
      try {
        next = await this.it.next();
      } catch (e) {
        throw new PcapFormatError(`${this.path}: gzip: ${(e as Error).message}`);
      }
      if (next.done) return { bytesRead: 0 };
      this.pending = next.value;
    }
    const n = this.pending.copy(buf, offset, 0, Math.min(length, this.pending.length));
    this.pending = this.pending.subarray(n);
    return { bytesRead: n };
  }

  close(): void {
    this.z.destroy();
  }
}

/**
 * The files to read for `path`: itself, or a directory's visible regular files in name order
 * with numbers compared as numbers (our recordings' names sort by time; tcpdump -C names them
 * file, file1, … file10). An empty directory is an error: a replay of nothing is a mistake.
 */
export async function captureFiles(path: string): Promise<string[]> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw new CaptureError(`cannot open pcap file ${path}: ${(e as Error).message}`, undefined, { cause: e });
  }
  if (!st.isDirectory()) return [path];
  const names = (await readdir(path, { withFileTypes: true })).filter((d) => d.isFile() && !d.name.startsWith('.')).map((d) => d.name);
  names.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  if (names.length === 0) throw new CaptureError(`--pcap ${path}: the directory holds no capture files`);
  return names.map((n) => `${path.replace(/\/+$/, '')}/${n}`);
}
