/**
 * A FrameSource over a capture file: classic pcap (either byte order, µs or ns timestamps) or
 * pcapng (pcapng.ts), with any link type in LINK_TYPES, passed on with each frame for decode.
 * The file is streamed through one reused buffer; each record is handed on as a view into it.
 * Every frame is delivered: port filtering is decode's job here, as the file has no BPF.
 *
 * A record whose header claims more than 256 KiB, a last record cut short, or a link type decode
 * does not know is a PcapFormatError: run() rejects after delivering every complete record
 * before it, so a replay of a half-copied file is loud rather than quietly short. Unlike the
 * ring, a throw from onFrame is not caught: it rejects run(), since file replays are where
 * decode bugs get found.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { CaptureError, PcapFormatError } from '../errors.js';
import { checkLinkType, ChunkReader, MAX_RECORD } from './file-reader.js';
import { PCAPNG_SHB, readPcapng } from './pcapng.js';
import { zeroCaptureStats, type CaptureStats, type FrameHandler, type FrameSource } from './source.js';

const MAGIC_US = 0xa1b2c3d4;
const MAGIC_NS = 0xa1b23c4d;
const GLOBAL_HEADER = 24;
const RECORD_HEADER = 16;
export { MAX_RECORD };

export interface PcapFileSourceOptions {
  /** Pacing by timestamps is not implemented: frames are delivered as fast as decode takes them. */
  realtime?: false;
}

export class PcapFileSource implements FrameSource {
  readonly name: string;
  private stopping = false;
  private running = false;
  private reader: ChunkReader | null = null;
  private readonly counters: CaptureStats = zeroCaptureStats();

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
    return this.reader?.reads ?? 0;
  }

  async run(onFrame: FrameHandler): Promise<void> {
    if (this.running) throw new Error('PcapFileSource.run() is already running');
    this.running = true;
    let fh: FileHandle;
    try {
      fh = await open(this.name, 'r');
    } catch (e) {
      this.running = false;
      throw new CaptureError(`cannot open pcap file ${this.name}: ${(e as Error).message}`, undefined, { cause: e });
    }
    try {
      await this.read(new ChunkReader(fh), onFrame);
    } finally {
      this.running = false;
      await fh.close();
    }
  }

  private async read(r: ChunkReader, onFrame: FrameHandler): Promise<void> {
    this.reader = r;
    const c = this.counters;
    const deliver: FrameHandler = (buf, off, capLen, wireLen, linkType) => {
      c.packets++;
      c.bytes += capLen;
      if (capLen < wireLen) c.truncated++;
      onFrame(buf, off, capLen, wireLen, linkType);
    };
    const stopping = () => this.stopping;
    if (!(await r.fill(4))) throw new PcapFormatError(`${this.name}: too short for a pcap header (${r.available} bytes)`);
    if (r.buf.readUInt32LE(r.start) === PCAPNG_SHB) return readPcapng(r, this.name, deliver, stopping);
    return readClassic(r, this.name, deliver, stopping);
  }
}

async function readClassic(r: ChunkReader, name: string, deliver: FrameHandler, stopping: () => boolean): Promise<void> {
  if (!(await r.fill(GLOBAL_HEADER))) throw new PcapFormatError(`${name}: too short for a pcap header (${r.available} bytes)`);
  const buf = r.buf;
  const magicLE = buf.readUInt32LE(0);
  let le: boolean;
  if (magicLE === MAGIC_US || magicLE === MAGIC_NS) le = true;
  else if (buf.readUInt32BE(0) === MAGIC_US || buf.readUInt32BE(0) === MAGIC_NS) le = false;
  else throw new PcapFormatError(`${name}: not a pcap or pcapng file (magic 0x${magicLE.toString(16).padStart(8, '0')})`);
  const u32 = (o: number): number => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  // The top bits of the link type field carry FCS information; the type is the low 16 bits.
  const linkType = checkLinkType(name, u32(20) & 0xffff, '');
  r.consume(GLOBAL_HEADER);

  while (!stopping()) {
    if (!(await r.fill(RECORD_HEADER))) {
      if (r.available === 0) return;
      throw new PcapFormatError(`${name}: truncated record header at offset ${r.offset} (${r.available} of 16 bytes)`);
    }
    const capLen = u32(r.start + 8);
    const wireLen = u32(r.start + 12);
    if (capLen > MAX_RECORD) {
      throw new PcapFormatError(`${name}: record at offset ${r.offset} claims ${capLen} bytes (limit ${MAX_RECORD}); file is corrupt`);
    }
    if (!(await r.fill(RECORD_HEADER + capLen))) {
      throw new PcapFormatError(
        `${name}: truncated record at offset ${r.offset}: header says ${capLen} bytes, ${r.available - RECORD_HEADER} present`,
      );
    }
    deliver(buf, r.start + RECORD_HEADER, capLen, wireLen, linkType);
    r.consume(RECORD_HEADER + capLen);
  }
}
