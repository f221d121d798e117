/**
 * --record DIR: the frames capture hands over, written as they came (in order, with their
 * capture times) to rotating pcapng files, without ever holding capture up.
 *
 * Capture's side, frame(), only copies the frame into an in-memory chunk (1 MiB) and decides the
 * layout: when a file is full or old, the next chunk starts a new file with its section header
 * and every interface description, so a file never depends on another. The writer's side works
 * through the sealed chunks one at a time (gzip each as its own member when compressing: gzip
 * readers take concatenated members as one stream) and appends them to the file.
 *
 * Loss is counted, never waited out: a frame that does not fit under the buffer bound is dropped
 * (buffer_full); a chunk the disk refuses (disk_full: ENOSPC/EDQUOT, else write_error) is
 * dropped with every frame in it, the file is cut back to its last whole chunk so it stays
 * readable, and what was queued for that file is dropped too (its interfaces may be missing);
 * the next frame starts a new file, so recording resumes once there is room.
 */
import { readdirSync } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { interfaceDescription, packetBlockLength, sectionHeader, writePacketBlock } from './pcapng-writer.js';
import { LINK_ETHERNET, type LinkType } from './source.js';

const gzipAsync = promisify(gzip);

export const RECORD_DROP_REASONS = ['buffer_full', 'disk_full', 'write_error'] as const;
export type RecordDropReason = (typeof RECORD_DROP_REASONS)[number];

const CHUNK_BYTES = 1 << 20;
/** Sealed chunks are written at least this often, so a quiet link's frames reach the disk. */
export const RECORD_FLUSH_MS = 1000;
const PREFIX = 'mirror-replay-';
const NAME_RE = /^mirror-replay-\d{8}T\d{6}\.\d{3}Z-\d{6}\.pcapng(\.gz)?$/;

export interface RecordOptions {
  dir: string;
  /** Start a new file once this many (uncompressed) bytes are in the current one; 0 = never. */
  maxFileBytes: number;
  /** Start a new file once the current one is this old; 0 = never. */
  maxFileMs: number;
  /** Files kept in `dir` (ours, by name); the oldest go first; 0 = all. */
  maxFiles: number;
  gzip: boolean;
  /** Bytes waiting for the disk at most; beyond it frames are dropped (buffer_full). */
  bufferBytes: number;
  snapLen: number;
}

export interface RecordCounters {
  framesWritten: number;
  /** Captured bytes of the frames written (what the frames carry, not the file's size). */
  bytesWritten: number;
  filesOpened: number;
  filesDeleted: number;
  dropped: Record<RecordDropReason, number>;
}

interface Chunk {
  buf: Buffer;
  len: number;
  frames: number;
  bytes: number;
  /** Close the current file and open this one before writing the chunk. */
  open: string | null;
}

export class Recorder {
  readonly counters: RecordCounters = { framesWritten: 0, bytesWritten: 0, filesOpened: 0, filesDeleted: 0, dropped: { buffer_full: 0, disk_full: 0, write_error: 0 } };
  private readonly interfaces = new Map<string, { id: number; linkType: LinkType; name: string }>();
  private cur: Chunk | null = null;
  private readonly queue: Chunk[] = [];
  /** Bytes in the queue and the current chunk. */
  private held = 0;
  /** The current file as capture lays it out: its size and when it started. */
  private fileBytes = 0;
  private fileStarted = 0;
  private fileCount = 0;
  private rotateDue = true;
  /** Interfaces described in the current file. */
  private described = 0;
  private fh: FileHandle | null = null;
  private path: string | null = null;
  /** Bytes of the open file known good (ends on a block). */
  private good = 0;
  /** Set after a failed write: chunks are dropped until the next file. */
  private failed: RecordDropReason | null = null;
  private writing: Promise<void> | null = null;
  private readonly files: string[];
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly opts: RecordOptions,
    /** A write failed (for a rate-limited log line). */
    private readonly onError: (reason: RecordDropReason, err: Error) => void = () => {},
  ) {
    this.files = existing(opts.dir);
    this.timer = setInterval(() => this.tick(), RECORD_FLUSH_MS);
    this.timer.unref();
  }

  /** One frame from capture (a view valid only during the call). Never blocks; never throws. */
  frame(buf: Uint8Array, off: number, capLen: number, wireLen: number, linkType: LinkType | undefined, tsUs: number | undefined, ifName: string): void {
    const need = packetBlockLength(capLen);
    if (this.held + need > this.opts.bufferBytes) {
      this.counters.dropped.buffer_full++;
      return;
    }
    if (this.rotateDue || (this.opts.maxFileBytes > 0 && this.fileBytes + need > this.opts.maxFileBytes && this.fileBytes > 0)) this.startFile();
    const iface = this.iface(ifName, linkType ?? LINK_ETHERNET);
    const c = this.room(need);
    writePacketBlock(c.buf, c.len, iface.id, tsUs ?? Date.now() * 1000, buf, off, capLen, wireLen);
    c.len += need;
    c.frames++;
    c.bytes += capLen;
    this.held += need;
    this.fileBytes += need;
  }

  /** Writes what is buffered, closes the file; resolves when done. Frames after this are not written. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.seal();
    await this.kick();
    await this.closeFile();
  }

  /** Bytes waiting for the disk. */
  get buffered(): number {
    return this.held;
  }

  private tick(): void {
    if (this.opts.maxFileMs > 0 && this.fileBytes > 0 && Date.now() - this.fileStarted >= this.opts.maxFileMs) this.rotateDue = true;
    this.seal();
    void this.kick();
  }

  private startFile(): void {
    this.seal();
    this.rotateDue = false;
    this.fileStarted = Date.now();
    const name = `${PREFIX}${new Date(this.fileStarted).toISOString().replace(/[-:]/g, '')}-${String(++this.fileCount % 1e6).padStart(6, '0')}.pcapng${this.opts.gzip ? '.gz' : ''}`;
    const head = sectionHeader();
    const c = this.room(head.length, `${this.opts.dir}/${name}`);
    head.copy(c.buf, c.len);
    c.len += head.length;
    this.held += head.length;
    this.fileBytes = head.length;
    this.described = 0;
    for (const i of this.interfaces.values()) this.describe(i);
  }

  private iface(name: string, linkType: LinkType): { id: number } {
    const key = `${linkType}/${name}`;
    let i = this.interfaces.get(key);
    if (!i) {
      i = { id: this.interfaces.size, linkType, name };
      this.interfaces.set(key, i);
    }
    if (i.id >= this.described) this.describe(i);
    return i;
  }

  /** Interface ids are the order of first sight, so every file describes them all in that order. */
  private describe(i: { id: number; linkType: LinkType; name: string }): void {
    const b = interfaceDescription(i.linkType, this.opts.snapLen, i.name);
    const c = this.room(b.length);
    b.copy(c.buf, c.len);
    c.len += b.length;
    this.held += b.length;
    this.fileBytes += b.length;
    this.described = i.id + 1;
  }

  /** The current chunk with `need` bytes free (a new one if not, or if it must open `open`). */
  private room(need: number, open: string | null = null): Chunk {
    if (this.cur && (open !== null || this.cur.len + need > this.cur.buf.length)) this.seal();
    this.cur ??= { buf: Buffer.allocUnsafe(Math.max(CHUNK_BYTES, need)), len: 0, frames: 0, bytes: 0, open };
    return this.cur;
  }

  private seal(): void {
    const c = this.cur;
    if (!c) return;
    this.cur = null;
    if (c.len === 0 && c.open === null) return;
    this.queue.push(c);
    if (this.queue.length > 1 || c.len >= CHUNK_BYTES / 2) void this.kick();
  }

  /** Starts the writer unless it runs; resolves when the queue is empty. */
  private kick(): Promise<void> {
    this.writing ??= this.drain().finally(() => (this.writing = null));
    return this.writing;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const c = this.queue[0];
      await this.write(c);
      this.queue.shift();
      this.held -= c.len;
    }
  }

  private async write(c: Chunk): Promise<void> {
    if (c.open !== null) await this.openFile(c.open);
    if (this.failed !== null || this.fh === null) {
      this.counters.dropped[this.failed ?? 'write_error'] += c.frames;
      return;
    }
    try {
      const data = this.opts.gzip ? await gzipAsync(c.buf.subarray(0, c.len)) : c.buf.subarray(0, c.len);
      for (let at = 0; at < data.length; ) at += (await this.fh.write(data, at, data.length - at)).bytesWritten;
      this.good += data.length;
      this.counters.framesWritten += c.frames;
      this.counters.bytesWritten += c.bytes;
    } catch (e) {
      await this.fail(e as NodeJS.ErrnoException, c.frames);
    }
  }

  private async openFile(path: string): Promise<void> {
    await this.closeFile();
    this.failed = null;
    try {
      this.fh = await open(path, 'wx');
    } catch (e) {
      this.fh = null;
      this.failed = reasonOf(e as NodeJS.ErrnoException);
      this.rotateDue = true;
      this.onError(this.failed, e as Error);
      return;
    }
    this.path = path;
    this.good = 0;
    this.counters.filesOpened++;
    this.files.push(path);
    await this.enforceCap();
  }

  /** Counts the chunk's frames, cuts the file back to its last whole chunk, and has the next frame start a new file. */
  private async fail(e: NodeJS.ErrnoException, frames: number): Promise<void> {
    const reason = reasonOf(e);
    this.counters.dropped[reason] += frames;
    this.failed = reason;
    this.rotateDue = true;
    this.onError(reason, e);
    await this.fh?.truncate(this.good).catch(() => {});
    if (this.good === 0 && this.path) {
      await this.fh?.close().catch(() => {});
      this.fh = null;
      await unlink(this.path).catch(() => {});
      this.files.pop();
    }
  }

  private async closeFile(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    this.path = null;
    await fh?.close().catch((e: Error) => this.onError('write_error', e));
  }

  /** Deletes our oldest files beyond maxFiles (the open one is never deleted: it is the newest). */
  private async enforceCap(): Promise<void> {
    while (this.opts.maxFiles > 0 && this.files.length > this.opts.maxFiles) {
      const f = this.files.shift()!;
      await unlink(f).then(
        () => this.counters.filesDeleted++,
        () => {},
      );
    }
  }
}

/** Our files already in `dir` (an earlier run's), oldest first: the cap counts them too. */
function existing(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => NAME_RE.test(n)).sort().map((n) => `${dir}/${n}`);
  } catch {
    return [];
  }
}

function reasonOf(e: NodeJS.ErrnoException): RecordDropReason {
  return e.code === 'ENOSPC' || e.code === 'EDQUOT' ? 'disk_full' : 'write_error';
}
