/**
 * A FrameSource over a classic pcap file (either byte order, µs or ns timestamps, Ethernet only).
 * The file is streamed through one reused buffer; each record is handed on as a view into it.
 * Every frame is delivered: port filtering is decode's job here, as the file has no BPF.
 *
 * A record whose header claims more than 256 KiB, or a last record cut short, is a
 * PcapFormatError: run() rejects after delivering every complete record before it, so a
 * replay of a half-copied file is loud rather than quietly short. Unlike the ring, a throw from
 * onFrame is not caught: it rejects run(), since file replays are where decode bugs get found.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { CaptureError, PcapFormatError } from '../errors.js';
import type { CaptureStats, FrameHandler, FrameSource } from './source.js';

const MAGIC_US = 0xa1b2c3d4;
const MAGIC_NS = 0xa1b23c4d;
const MAGIC_PCAPNG = 0x0a0d0d0a;
const LINKTYPE_ETHERNET = 1;
const GLOBAL_HEADER = 24;
const RECORD_HEADER = 16;
/** Largest record we accept; matches the ring's snap length. */
export const MAX_RECORD = 262144;
const CHUNK = 1 << 20;

export interface PcapFileSourceOptions {
  /** Pacing by timestamps is not implemented: frames are delivered as fast as decode takes them. */
  realtime?: false;
}

export class PcapFileSource implements FrameSource {
  readonly name: string;
  private stopping = false;
  private running = false;
  private chunks = 0;
  private readonly counters: CaptureStats = { packets: 0, bytes: 0, kernelDrops: 0, kernelFreezes: 0, truncated: 0 };

  constructor(path: string, opts: PcapFileSourceOptions = {}) {
    if (opts.realtime) throw new PcapFormatError('realtime pcap replay is not supported');
    this.name = path;
  }

  stop(): void {
    this.stopping = true;
  }

  stats(): CaptureStats {
    return { ...this.counters };
  }

  progress(): number {
    return this.chunks;
  }

  async run(onFrame: FrameHandler): Promise<void> {
    if (this.running) throw new Error('PcapFileSource.run() is already running');
    this.running = true;
    let fh: FileHandle;
    try {
      fh = await open(this.name, 'r');
    } catch (e) {
      throw new CaptureError(`cannot open pcap file ${this.name}: ${(e as Error).message}`, undefined, { cause: e });
    }
    try {
      await this.read(fh, onFrame);
    } finally {
      this.running = false;
      await fh.close();
    }
  }

  private async read(fh: FileHandle, onFrame: FrameHandler): Promise<void> {
    const buf = Buffer.allocUnsafe(CHUNK);
    let start = 0; // first unconsumed byte in buf
    let end = 0; // one past the last valid byte in buf
    let fileOffset = 0; // file offset of buf[start]
    let eof = false;

    // Moves the unconsumed tail to the front and reads until at least `need` bytes are buffered.
    const fill = async (need: number): Promise<boolean> => {
      if (end - start >= need) return true;
      if (start > 0) {
        buf.copyWithin(0, start, end);
        end -= start;
        start = 0;
      }
      while (!eof && end < need) {
        const { bytesRead } = await fh.read(buf, end, buf.length - end, null);
        this.chunks++;
        if (bytesRead === 0) eof = true;
        end += bytesRead;
      }
      return end - start >= need;
    };

    if (!(await fill(GLOBAL_HEADER))) {
      if (end >= 4 && buf.readUInt32LE(0) === MAGIC_PCAPNG) throw pcapngError(this.name);
      throw new PcapFormatError(`${this.name}: too short for a pcap header (${end} bytes)`);
    }
    const magicLE = buf.readUInt32LE(0);
    if (magicLE === MAGIC_PCAPNG) throw pcapngError(this.name);
    let le: boolean;
    if (magicLE === MAGIC_US || magicLE === MAGIC_NS) le = true;
    else if (buf.readUInt32BE(0) === MAGIC_US || buf.readUInt32BE(0) === MAGIC_NS) le = false;
    else throw new PcapFormatError(`${this.name}: not a pcap file (magic 0x${magicLE.toString(16).padStart(8, '0')})`);
    const u32 = (o: number): number => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
    // The top bits of the link type field carry FCS information; the type is the low 16 bits.
    const linkType = u32(20) & 0xffff;
    if (linkType !== LINKTYPE_ETHERNET) {
      throw new PcapFormatError(`${this.name}: link type ${linkType} is not supported; only Ethernet (1) is`);
    }
    start = GLOBAL_HEADER;
    fileOffset = GLOBAL_HEADER;

    while (!this.stopping) {
      if (!(await fill(RECORD_HEADER))) {
        if (end - start === 0) return;
        throw new PcapFormatError(`${this.name}: truncated record header at offset ${fileOffset} (${end - start} of 16 bytes)`);
      }
      const capLen = u32(start + 8);
      const wireLen = u32(start + 12);
      if (capLen > MAX_RECORD) {
        throw new PcapFormatError(`${this.name}: record at offset ${fileOffset} claims ${capLen} bytes (limit ${MAX_RECORD}); file is corrupt`);
      }
      if (!(await fill(RECORD_HEADER + capLen))) {
        throw new PcapFormatError(
          `${this.name}: truncated record at offset ${fileOffset}: header says ${capLen} bytes, ${end - start - RECORD_HEADER} present`,
        );
      }
      this.counters.packets++;
      this.counters.bytes += capLen;
      if (capLen < wireLen) this.counters.truncated++;
      onFrame(buf, start + RECORD_HEADER, capLen, wireLen);
      start += RECORD_HEADER + capLen;
      fileOffset += RECORD_HEADER + capLen;
    }
  }
}

function pcapngError(path: string): PcapFormatError {
  return new PcapFormatError(`${path}: pcapng is not supported; convert with \`editcap -F pcap\``);
}
