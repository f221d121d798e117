/**
 * A FrameSource over capture files: classic pcap (either byte order, µs or ns timestamps) or
 * pcapng (pcapng.ts), gzip-compressed or not, one file or a directory of rotated files read in
 * name order as one stream (file-reader.ts), with any link type in LINK_TYPES, passed on with
 * each frame for decode. Each file is streamed through one reused buffer; each record is handed
 * on as a view into it. Every frame is delivered: port filtering is decode's job here, as the
 * file has no BPF.
 *
 * Timing: `speed` 0 delivers as fast as decode and the `gate` (the destination) take frames; 1
 * keeps the recorded gaps between frames, 2 halves them. `loops` reads the files again; between
 * passes `onPassEnd` runs (the daemon closes its flows there, since the next pass repeats their
 * sequence numbers).
 *
 * A record whose header claims more than 256 KiB, a last record cut short, or a link type decode
 * does not know is a PcapFormatError: run() rejects after delivering every complete record
 * before it, so a replay of a half-copied file is loud rather than quietly short. Unlike the
 * ring, a throw from onFrame is not caught: it rejects run(), since file replays are where
 * decode bugs get found.
 */
import { PcapFormatError } from '../errors.js';
import { captureFiles, checkLinkType, ChunkReader, MAX_RECORD, openCapture, type Pace } from './file-reader.js';
import { PCAPNG_SHB, readPcapng } from './pcapng.js';
import { zeroCaptureStats, type CaptureStats, type FrameHandler, type FrameSource } from './source.js';

const MAGIC_US = 0xa1b2c3d4;
const MAGIC_NS = 0xa1b23c4d;
const GLOBAL_HEADER = 24;
const RECORD_HEADER = 16;
/** The gate is asked every this many frames: often enough to bound what one pass queues. */
const GATE_EVERY = 64;
/** Waits shorter than this are not worth a timer: the lateness is caught up at the next frame. */
const MIN_WAIT_MS = 1;
export { MAX_RECORD };

export interface PcapFileSourceOptions {
  /** 0 (default): as fast as decode and the gate allow; N > 0: the recorded gaps divided by N. */
  speed?: number;
  /** Passes over the files (default 1). */
  loops?: number;
  /** After each pass but the last. */
  onPassEnd?: () => void;
  /** Asked every GATE_EVERY frames; a promise holds reading back until it resolves. */
  gate?: () => Promise<void> | null;
}

export class PcapFileSource implements FrameSource {
  readonly name: string;
  private stopping = false;
  private running = false;
  private reads = 0;
  private reader: ChunkReader | null = null;
  private readonly counters: CaptureStats = zeroCaptureStats();

  constructor(
    path: string,
    private readonly opts: PcapFileSourceOptions = {},
  ) {
    const speed = opts.speed ?? 0;
    if (!(Number.isFinite(speed) && speed >= 0)) throw new PcapFormatError(`speed must be 0 or more, got ${speed}`);
    this.name = path;
  }

  stop(): void {
    this.stopping = true;
  }

  stats(): CaptureStats {
    return { ...this.counters };
  }

  progress(): number {
    return this.reads + (this.reader?.reads ?? 0);
  }

  async run(onFrame: FrameHandler): Promise<void> {
    if (this.running) throw new Error('PcapFileSource.run() is already running');
    this.running = true;
    try {
      const files = await captureFiles(this.name);
      const loops = this.opts.loops ?? 1;
      for (let pass = 0; pass < loops && !this.stopping; pass++) {
        const pace = this.pacer();
        for (const f of files) {
          if (this.stopping) break;
          await this.readFile(f, onFrame, pace);
        }
        if (pass < loops - 1 && !this.stopping) this.opts.onPassEnd?.();
      }
    } finally {
      this.running = false;
    }
  }

  private async readFile(path: string, onFrame: FrameHandler, pace: Pace | null): Promise<void> {
    const file = await openCapture(path);
    try {
      await this.read(path, new ChunkReader(file.bytes), onFrame, pace);
    } finally {
      if (this.reader) this.reads += this.reader.reads;
      this.reader = null;
      await file.close();
    }
  }

  /** The pace for one pass: recorded time mapped onto the wall clock from the pass's first timed frame; the gate every GATE_EVERY frames. */
  private pacer(): Pace | null {
    const speed = this.opts.speed ?? 0;
    const gate = this.opts.gate;
    if (speed === 0 && !gate) return null;
    let origin: { ts: number; wall: number } | null = null;
    let n = 0;
    return (ts) => {
      if (gate && ++n % GATE_EVERY === 0) {
        const g = gate();
        if (g) return g.then(() => void this.reads++);
      }
      if (speed === 0 || ts === undefined) return null;
      const now = performance.now();
      if (origin === null) origin = { ts, wall: now };
      const wait = origin.wall + (ts - origin.ts) / 1000 / speed - now;
      if (wait < MIN_WAIT_MS) return null;
      return new Promise<void>((r) => setTimeout(r, wait)).then(() => void this.reads++);
    };
  }

  private async read(path: string, r: ChunkReader, onFrame: FrameHandler, pace: Pace | null): Promise<void> {
    this.reader = r;
    const c = this.counters;
    const deliver: FrameHandler = (buf, off, capLen, wireLen, linkType, ts) => {
      c.packets++;
      c.bytes += capLen;
      if (capLen < wireLen) c.truncated++;
      onFrame(buf, off, capLen, wireLen, linkType, ts);
    };
    const stopping = () => this.stopping;
    if (!(await r.fill(4))) throw new PcapFormatError(`${path}: too short for a pcap header (${r.available} bytes)`);
    if (r.buf.readUInt32LE(r.start) === PCAPNG_SHB) return readPcapng(r, path, deliver, stopping, pace);
    return readClassic(r, path, deliver, stopping, pace);
  }
}

async function readClassic(r: ChunkReader, name: string, deliver: FrameHandler, stopping: () => boolean, pace: Pace | null): Promise<void> {
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
  const tsDiv = magicLE === MAGIC_NS || (!le && buf.readUInt32BE(0) === MAGIC_NS) ? 1000 : 1;
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
    const ts = u32(r.start) * 1e6 + u32(r.start + 4) / tsDiv;
    const wait = pace?.(ts);
    if (wait) await wait;
    deliver(buf, r.start + RECORD_HEADER, capLen, wireLen, linkType, ts);
    r.consume(RECORD_HEADER + capLen);
  }
}
