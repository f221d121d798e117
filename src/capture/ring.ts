/**
 * The live FrameSource: an AF_PACKET TPACKET_V3 ring on one interface, with the port filter
 * attached in the kernel. Frames are read straight out of the mmap'd blocks: no syscall and no
 * allocation per frame. A frame view is valid only until onFrame returns, because the block is
 * handed back to the kernel right after its last frame.
 *
 * Geometry: the kernel hands a block over when it is full or when the retire timeout passes with
 * frames in it, however few. While we are stalled, the ring therefore holds min(blocks × timeout,
 * usable bytes ÷ rate): many small blocks and a timeout of 100 ms make the first term 51 s for the
 * default 64 MiB, so that up to ~5k small requests/s the ring's depth is time, and beyond it the
 * ring's bytes (README: "Ring depth"). The price is latency: a frame waits up to the timeout (two,
 * when blocks fill by size) before we see it.
 */
import { setImmediate as yieldToLoop, setTimeout as nap } from 'node:timers/promises';
import { CaptureError } from '../errors.js';
import { buildTcpPortFilter } from './bpf.js';
import * as libc from './libc.js';
import { interfaceInfo, validateInterfaceName } from './netif.js';
import { zeroCaptureStats, type CaptureErrorHandler, type CaptureStats, type FrameHandler, type FrameSource } from './source.js';

const SOL_SOCKET = 1;
const SO_ERROR = 4;
const SO_ATTACH_FILTER = 26;
const SOL_PACKET = 263;
const PACKET_RX_RING = 5;
const PACKET_STATISTICS = 6;
const PACKET_VERSION = 10;
const PACKET_FANOUT = 18;
const PACKET_FANOUT_HASH = 0;
const PACKET_FANOUT_FLAG_DEFRAG = 0x8000;
const PACKET_FANOUT_FLAG_UNIQUEID = 0x2000;
const TPACKET_V3 = 2;
const ETH_P_ALL = 0x0003;
const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
const POLLIN = 1;
const POLLERR = 8;

const TP_STATUS_KERNEL = 0;
const TP_STATUS_USER = 1;
const TP_STATUS_LOSING = 4;

// struct tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1.
const BLK_STATUS = 8;
const BLK_NUM_PKTS = 12;
const BLK_FIRST_PKT = 16;
/** ts_first_pkt: when the kernel opened the block, i.e. no later than its first frame. */
const BLK_TS_FIRST_SEC = 32;
const BLK_TS_FIRST_NSEC = 36;
// struct tpacket3_hdr
const PKT_NEXT = 0;
const PKT_SEC = 4;
const PKT_NSEC = 8;
const PKT_SNAPLEN = 12;
const PKT_LEN = 16;
const PKT_MAC = 24;

/** Fixed by TPACKET_V3 only through frame_nr bookkeeping; frames are variable-length in blocks. */
const FRAME_SIZE = 2048;
/** TPACKET_ALIGN(TPACKET3_HDRLEN (48 + 20) + 16) − 14: where the kernel puts an Ethernet frame's first byte. */
const FRAME_MAC_OFFSET = 82;
/** Bounds how late stop() is noticed. While waiting, each ring occupies one koffi async worker
 * (napi async work, i.e. the libuv pool of UV_THREADPOOL_SIZE=4 by default). */
const POLL_MS = 100;
/**
 * Once a block has come, the next is waited for with a nap on this thread's timer, not a poll(2):
 * a poll runs on a pool thread, so each costs two thread wake-ups and a loop wake-up (100 µs and
 * more of CPU in a VM), once per block while traffic is steady. A nap takes every block that
 * filled in the meantime at one wake-up; a nap that finds none goes back to poll. It delays
 * frames by at most NAP_MAX_MS, against the retire timeout's 100 ms; and lasts no longer than half
 * the ring takes to fill at NAP_LINK_BYTES_PER_MS (10 Gbit/s), so a small ring polls. Each wake-up
 * costs ~150 µs of CPU here: at 100k frames/s, 20 ms naps instead of 10 ms save ~75 ns a frame.
 */
const NAP_MAX_MS = 20;
const NAP_LINK_BYTES_PER_MS = 1.25e6;

/** How long a ring of `ringBytes` naps between blocks (0: it polls). */
export function napMs(ringBytes: number): number {
  return Math.min(NAP_MAX_MS, Math.floor(ringBytes / 2 / NAP_LINK_BYTES_PER_MS));
}
/** While blocks are ready back to back, let timers and I/O run at least this often. */
const YIELD_MS = 1;
/** A block must hold one whole 64 KiB GRO frame plus block and frame headers. */
const MIN_BLOCK_KIB = 128;
const MAX_BLOCK_KIB = 65536;
/** struct tpacket_block_desc: the first frame of a block starts after it. */
export const BLOCK_HEADER_BYTES = 48;
export const DEFAULT_RING_MIB = 64;
export const DEFAULT_BLOCK_KIB = 128;
export const DEFAULT_RETIRE_MS = 100;
export const MAX_RETIRE_MS = 10_000;

/**
 * What a frame of `capLen` bytes takes in a block: the tpacket3_hdr and sockaddr_ll the kernel
 * writes before it (the MAC header starts at offset 82 for Ethernet), 8-byte aligned.
 */
export function ringCostPerFrame(capLen: number): number {
  return (FRAME_MAC_OFFSET + capLen + 7) & ~7;
}

/** Blocks of a ring and the stall it absorbs when traffic is light (blocks retire by timeout). */
export interface RingGeometry {
  blocks: number;
  blockBytes: number;
  retireMs: number;
  /** blocks × retire timeout: what the ring holds at rates below usable block bytes ÷ timeout. */
  lowRateDepthMs: number;
}

/**
 * Checks a geometry and describes it; throws CaptureError naming what is wrong. Blocks are a power
 * of two because the kernel allocates each as 2^order pages: any other size wastes the rest.
 */
export function ringGeometry(ringMiB: number, blockKiB: number, retireMs: number): RingGeometry {
  const pageKiB = libc.pageSize() / 1024;
  if (!Number.isInteger(blockKiB) || blockKiB < Math.max(MIN_BLOCK_KIB, pageKiB) || blockKiB > MAX_BLOCK_KIB || (blockKiB & (blockKiB - 1)) !== 0) {
    throw new CaptureError(`block size must be a power of two from ${Math.max(MIN_BLOCK_KIB, pageKiB)} KiB to ${MAX_BLOCK_KIB / 1024} MiB, got ${blockKiB} KiB`);
  }
  if (!Number.isInteger(ringMiB) || ringMiB < 1 || ringMiB > 16384 || (ringMiB * 1024) % blockKiB !== 0 || (ringMiB * 1024) / blockKiB < 2) {
    throw new CaptureError(`ringMiB must be an integer number of blocks (at least 2 of ${blockKiB} KiB) up to 16384, got ${ringMiB}`);
  }
  if (!Number.isInteger(retireMs) || retireMs < 1 || retireMs > MAX_RETIRE_MS) {
    throw new CaptureError(`block retire timeout must be an integer from 1 to ${MAX_RETIRE_MS} ms, got ${retireMs}`);
  }
  const blocks = (ringMiB * 1024) / blockKiB;
  return { blocks, blockBytes: blockKiB * 1024, retireMs, lowRateDepthMs: blocks * retireMs };
}

/**
 * One worker's share of a ring of `ringMiB` split `workers` ways: whole MiB and whole blocks,
 * rounded down. May be below two blocks; ringGeometry then says so.
 */
export function ringShareMiB(ringMiB: number, workers: number, blockKiB: number): number {
  const unitMiB = Math.max(1, blockKiB / 1024);
  return Math.floor(ringMiB / workers / unitMiB) * unitMiB;
}

export interface PacketRingOptions {
  interface: string;
  port: number;
  /** Total ring size (default 64 MiB). */
  ringMiB?: number;
  /** Block size, a power of two (default 128 KiB); frames larger than a block are truncated by the kernel. */
  blockKiB?: number;
  /** The kernel hands over a block with frames in it after this long, full or not (default 100 ms). */
  retireMs?: number;
  /**
   * Called when the kernel's drop count has risen (the ring was full), with the new drops, before
   * any frame captured after them is handed over. Called from run()'s loop or from stats().
   */
  onLoss?: (drops: number) => void;
  /** Told of each exception onFrame or onLoss threw (counted in stats() either way); the loop carries on. */
  onError?: CaptureErrorHandler;
  /** Also capture segments whose source port is `port`. */
  bothDirections?: boolean;
  /**
   * Join PACKET_FANOUT group N (hash mode, with defrag) so several rings share a link, each flow on
   * one ring; 'new' asks the kernel for an unused id (read it from `fanoutId` once run() has begun).
   */
  fanoutGroup?: number | 'new';
  /**
   * Wait with poll(2) on the calling thread instead of a libuv pool thread. For a worker thread
   * that owns the ring: N rings would otherwise hold N of the process's 4 pool threads.
   */
  blockingPoll?: boolean;
  /** A classic BPF program from bpf.ts to attach instead of the TCP port filter (doctor's UDP 4789 sample). */
  filter?: Buffer;
}

/** Counters outside the CaptureStats contract (the errors are in it: they reach /metrics). */
export interface RingStats {
  /** The last exception onFrame or onLoss threw. */
  lastHandlerError: unknown;
  /** Blocks walked and handed back to the kernel. */
  blocks: number;
  /** poll() calls that returned. */
  polls: number;
  /** Naps taken instead of a poll (napMs). */
  naps: number;
  /** The last socket error seen through POLLERR (e.g. ENETDOWN when the link went down). */
  lastSocketErrno: number;
}

export class PacketRing implements FrameSource {
  readonly name: string;
  private readonly filter: Buffer;
  readonly geometry: RingGeometry;
  private readonly blockSize: number;
  private readonly blockNr: number;
  private readonly retireMs: number;
  private readonly fanoutGroup: number | 'new' | undefined;
  private readonly blockingPoll: boolean;
  private readonly onLoss: ((drops: number) => void) | undefined;
  private readonly onError: CaptureErrorHandler | undefined;
  private fanout = -1;

  private fd = -1;
  private map: bigint | null = null;
  private words: Int32Array | null = null;
  /** The next block to walk. */
  private block = 0;
  private running = false;
  private stopping = false;
  /** After stop(): keep handing over blocks until the kernel's current one is empty, or this time. */
  private drainUntil = 0;

  private readonly counters: CaptureStats = zeroCaptureStats();
  private readonly extra: RingStats = { lastHandlerError: undefined, blocks: 0, polls: 0, naps: 0, lastSocketErrno: 0 };
  // Reused for every getsockopt/poll call.
  private readonly statsBuf = Buffer.alloc(12);
  private readonly lenBuf = Buffer.alloc(4);
  private readonly pollfd = Buffer.alloc(8);

  constructor(opts: PacketRingOptions) {
    validateInterfaceName(opts.interface);
    this.name = opts.interface;
    this.filter = opts.filter ?? buildTcpPortFilter(opts.port, { bothDirections: opts.bothDirections === true });
    if (this.filter.length === 0 || this.filter.length % 8 !== 0) throw new CaptureError('filter must be a non-empty array of 8-byte sock_filter instructions');
    this.geometry = ringGeometry(opts.ringMiB ?? DEFAULT_RING_MIB, opts.blockKiB ?? DEFAULT_BLOCK_KIB, opts.retireMs ?? DEFAULT_RETIRE_MS);
    if (opts.fanoutGroup !== undefined && opts.fanoutGroup !== 'new' && (!Number.isInteger(opts.fanoutGroup) || opts.fanoutGroup < 0 || opts.fanoutGroup > 0xffff)) {
      throw new CaptureError(`fanoutGroup must be an integer in 0..65535, got ${opts.fanoutGroup}`);
    }
    this.blockSize = this.geometry.blockBytes;
    this.blockNr = this.geometry.blocks;
    this.retireMs = this.geometry.retireMs;
    this.fanoutGroup = opts.fanoutGroup;
    this.blockingPoll = opts.blockingPoll === true;
    this.onLoss = opts.onLoss;
    this.onError = opts.onError;
  }

  /** The PACKET_FANOUT group joined (known from the first tick of run()); -1 if none. */
  get fanoutId(): number {
    return this.fanout;
  }

  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    // Frames that arrived before stop() may sit in the kernel's current block until it retires:
    // after one timeout if its block was current at the last timer tick, else after two.
    this.drainUntil = performance.now() + 2 * this.retireMs + 50;
  }

  /**
   * While blocks the kernel has handed over wait to be walked (we fell behind, e.g. after a stall):
   * the capture time (ms since the epoch) up to which frames have been handed to onFrame.
   * Otherwise (caught up, or not running) null.
   */
  backlogTime(): number | null {
    const words = this.words;
    if (!this.running || words === null) return null;
    const base = this.block * this.blockSize;
    if ((Atomics.load(words, (base + BLK_STATUS) / 4) & TP_STATUS_USER) === 0) return null;
    return (words[(base + BLK_TS_FIRST_SEC) / 4] >>> 0) * 1000 + Math.floor(words[(base + BLK_TS_FIRST_NSEC) / 4] / 1e6);
  }

  stats(): CaptureStats {
    this.readKernelStats();
    return { ...this.counters };
  }

  ringStats(): RingStats {
    return { ...this.extra };
  }

  progress(): number {
    return this.extra.polls + this.extra.blocks;
  }

  async run(onFrame: FrameHandler): Promise<void> {
    if (this.running) throw new CaptureError(`capture on ${this.name} is already running`);
    if (this.stopping) return;
    this.running = true;
    try {
      this.open();
      await this.loop(onFrame);
    } catch (e) {
      this.close(false);
      throw e;
    } finally {
      this.running = false;
    }
    this.close(true);
  }

  private open(): void {
    const info = interfaceInfo(this.name);
    if (!info.up) throw new CaptureError(`interface ${this.name} is down — bring it up with: ip link set ${this.name} up`);

    // Protocol 0: the socket receives nothing until bind(), so no frame gets past before the
    // filter and the ring are in place.
    this.fd = libc.socket(libc.AF_PACKET, libc.SOCK_RAW | libc.SOCK_CLOEXEC, 0);
    if (this.fd < 0) throw libc.syscallError('socket(AF_PACKET, SOCK_RAW)');

    this.setsockopt(SOL_PACKET, PACKET_VERSION, u32s(TPACKET_V3), 'setsockopt(PACKET_VERSION, TPACKET_V3)');

    const fprog = Buffer.alloc(16); // struct sock_fprog { u16 len; ptr filter; }
    writeU16(fprog, 0, this.filter.length / 8);
    writeU64(fprog, 8, libc.addressOf(this.filter));
    this.setsockopt(SOL_SOCKET, SO_ATTACH_FILTER, fprog, 'setsockopt(SO_ATTACH_FILTER)');

    const framesPerBlock = this.blockSize / FRAME_SIZE;
    const req = u32s(this.blockSize, this.blockNr, FRAME_SIZE, framesPerBlock * this.blockNr, this.retireMs, 0, 0);
    this.setsockopt(SOL_PACKET, PACKET_RX_RING, req, `setsockopt(PACKET_RX_RING, ${this.blockNr} x ${this.blockSize / 1024} KiB)`);

    const len = this.blockSize * this.blockNr;
    const map = libc.mmap(null, len, PROT_READ | PROT_WRITE, MAP_SHARED, this.fd, 0n);
    if (map === null || map === libc.MAP_FAILED) throw libc.syscallError(`mmap(${len} bytes)`);
    this.map = map;

    const sll = Buffer.alloc(20); // struct sockaddr_ll
    writeU16(sll, 0, libc.AF_PACKET);
    sll.writeUInt16BE(ETH_P_ALL, 2);
    writeI32(sll, 4, info.index);
    if (libc.bind(this.fd, sll, sll.length) < 0) throw libc.syscallError(`bind(AF_PACKET, ${this.name})`);

    if (this.fanoutGroup !== undefined) {
      // Fanout needs a bound socket. The hash is symmetric, so both directions of a connection
      // land on the same ring.
      const unique = this.fanoutGroup === 'new';
      const flags = PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG | (unique ? PACKET_FANOUT_FLAG_UNIQUEID : 0);
      const arg = (unique ? 0 : (this.fanoutGroup as number)) | (flags << 16);
      this.setsockopt(SOL_PACKET, PACKET_FANOUT, u32s(arg), `setsockopt(PACKET_FANOUT, group ${this.fanoutGroup})`);
      const val = Buffer.alloc(4);
      writeU32(this.lenBuf, 0, 4);
      if (libc.getsockopt(this.fd, SOL_PACKET, PACKET_FANOUT, val, this.lenBuf) < 0) throw libc.syscallError('getsockopt(PACKET_FANOUT)');
      this.fanout = readU32(val, 0) & 0xffff;
    }
    writeI32(this.pollfd, 0, this.fd);
    writeU16(this.pollfd, 4, POLLIN | POLLERR);
  }

  private async loop(onFrame: FrameHandler): Promise<void> {
    const ab = libc.view(this.map!, this.blockSize * this.blockNr);
    const bytes = new Uint8Array(ab);
    const dv = new DataView(ab);
    const words = new Int32Array(ab); // block_status goes through Atomics: the kernel writes it last
    const le = libc.LITTLE_ENDIAN;
    this.words = words;
    this.block = 0;
    const sleepMs = napMs(this.blockNr * this.blockSize);
    const canNap = sleepMs > 0;
    let napNext = false;
    let yielded = performance.now();
    try {
      while (!this.stopping || this.draining(dv, le)) {
        const base = this.block * this.blockSize;
        const statusIdx = (base + BLK_STATUS) / 4;
        const status = Atomics.load(words, statusIdx);
        if ((status & TP_STATUS_USER) === 0) {
          if (napNext && !this.stopping) {
            napNext = false;
            await nap(sleepMs);
            this.extra.naps++;
          } else await this.waitForData(this.stopping ? Math.max(1, Math.min(POLL_MS, Math.ceil(this.drainUntil - performance.now()))) : POLL_MS);
          yielded = performance.now();
          continue;
        }
        // Drops happened before this block closed: say so before its frames, which follow the hole.
        if (status & TP_STATUS_LOSING) this.readKernelStats();
        this.walkBlock(bytes, dv, le, base, onFrame);
        Atomics.store(words, statusIdx, TP_STATUS_KERNEL);
        this.extra.blocks++;
        this.block = this.block + 1 === this.blockNr ? 0 : this.block + 1;
        napNext = canNap;
        // Keep timers, metrics and stop() responsive while blocks are queued back to back.
        if (performance.now() - yielded >= YIELD_MS) {
          await yieldToLoop();
          yielded = performance.now();
        }
      }
    } finally {
      this.words = null;
    }
  }

  /**
   * After stop(): whether to go on. A block handed over is walked; the kernel's current block (the
   * next one, when we have caught up) is waited for while it holds frames, up to drainUntil.
   */
  private draining(dv: DataView, le: boolean): boolean {
    if (performance.now() >= this.drainUntil) return false;
    const base = this.block * this.blockSize;
    if (Atomics.load(this.words!, (base + BLK_STATUS) / 4) & TP_STATUS_USER) return true;
    return dv.getUint32(base + BLK_NUM_PKTS, le) > 0;
  }

  private walkBlock(bytes: Uint8Array, dv: DataView, le: boolean, base: number, onFrame: FrameHandler): void {
    const end = base + this.blockSize;
    const num = dv.getUint32(base + BLK_NUM_PKTS, le);
    let p = base + dv.getUint32(base + BLK_FIRST_PKT, le);
    for (let i = 0; i < num; i++) {
      if (p + PKT_MAC + 2 > end) {
        this.counters.badBlocks++;
        return;
      }
      const capLen = dv.getUint32(p + PKT_SNAPLEN, le);
      const wireLen = dv.getUint32(p + PKT_LEN, le);
      const frame = p + dv.getUint16(p + PKT_MAC, le);
      if (frame + capLen > end) {
        this.counters.badBlocks++;
        return;
      }
      this.counters.packets++;
      this.counters.bytes += capLen;
      if (capLen < wireLen) this.counters.truncated++;
      try {
        onFrame(bytes, frame, capLen, wireLen, undefined, dv.getUint32(p + PKT_SEC, le) * 1e6 + Math.floor(dv.getUint32(p + PKT_NSEC, le) / 1000));
      } catch (e) {
        this.counters.handlerErrors++;
        this.caught('handler', e);
      }
      p += dv.getUint32(p + PKT_NEXT, le);
    }
  }

  private async waitForData(timeoutMs: number): Promise<void> {
    this.pollfd.writeUInt16LE(0, 6);
    let r: number;
    if (this.blockingPoll) {
      r = libc.pollSync(this.pollfd, 1, timeoutMs);
      await yieldToLoop(); // let this thread's timers and messages run between waits
    } else r = await libc.pollAsync(this.pollfd, 1, timeoutMs);
    this.extra.polls++;
    if (r < 0) {
      // errno is per thread and poll ran on a worker, so it is not ours to read; EINTR is
      // the usual cause. Back off so a persistent failure cannot spin.
      this.counters.pollErrors++;
      await new Promise((res) => setTimeout(res, 10));
      return;
    }
    const revents = libc.LITTLE_ENDIAN ? this.pollfd.readUInt16LE(6) : this.pollfd.readUInt16BE(6);
    if (r > 0 && revents & POLLERR) {
      // A socket error (ENETDOWN when the link goes down) keeps poll() returning at once until
      // it is read; read it, and wait out the poll interval so a down link does not spin.
      this.counters.pollErrors++;
      const val = Buffer.alloc(4);
      const len = u32s(4);
      if (libc.getsockopt(this.fd, SOL_SOCKET, SO_ERROR, val, len) === 0) this.extra.lastSocketErrno = readI32(val, 0);
      await new Promise((res) => setTimeout(res, POLL_MS));
    }
  }

  /** PACKET_STATISTICS resets the kernel's counters on every read, so add them up. */
  private readKernelStats(): void {
    if (this.fd < 0) return;
    writeU32(this.lenBuf, 0, this.statsBuf.length);
    if (libc.getsockopt(this.fd, SOL_PACKET, PACKET_STATISTICS, this.statsBuf, this.lenBuf) < 0) return;
    const drops = readU32(this.statsBuf, 4);
    this.counters.kernelDrops += drops;
    this.counters.kernelFreezes += readU32(this.statsBuf, 8);
    if (drops === 0 || !this.onLoss) return;
    try {
      this.onLoss(drops);
    } catch (e) {
      this.counters.lossHandlerErrors++;
      this.caught('loss_handler', e);
    }
  }

  /** A bug in a stage must not stop capture: count it (the caller did), keep it, tell onError. */
  private caught(kind: 'handler' | 'loss_handler', e: unknown): void {
    this.extra.lastHandlerError = e;
    try {
      this.onError?.(kind, e);
    } catch {
      // A failing reporter cannot stop capture either; the counter has it.
    }
  }

  private setsockopt(level: number, name: number, val: Buffer, what: string): void {
    if (libc.setsockopt(this.fd, level, name, val, val.length) < 0) throw libc.syscallError(what);
  }

  /** Unmaps and closes; throws the first failure only when no other error is on its way out. */
  private close(mayThrow: boolean): void {
    let err: CaptureError | undefined;
    if (this.fd >= 0) this.readKernelStats();
    if (this.map !== null) {
      if (libc.munmap(this.map, this.blockSize * this.blockNr) < 0) err ??= libc.syscallError('munmap(ring)');
      this.map = null;
    }
    if (this.fd >= 0) {
      if (libc.close(this.fd) < 0) err ??= libc.syscallError('close(AF_PACKET socket)');
      this.fd = -1;
    }
    if (err && mayThrow) throw err;
  }
}

function u32s(...vals: number[]): Buffer {
  const b = Buffer.alloc(vals.length * 4);
  vals.forEach((v, i) => writeU32(b, i * 4, v));
  return b;
}
function writeU16(b: Buffer, o: number, v: number): void {
  if (libc.LITTLE_ENDIAN) b.writeUInt16LE(v, o);
  else b.writeUInt16BE(v, o);
}
function writeU32(b: Buffer, o: number, v: number): void {
  if (libc.LITTLE_ENDIAN) b.writeUInt32LE(v >>> 0, o);
  else b.writeUInt32BE(v >>> 0, o);
}
function writeI32(b: Buffer, o: number, v: number): void {
  if (libc.LITTLE_ENDIAN) b.writeInt32LE(v, o);
  else b.writeInt32BE(v, o);
}
function writeU64(b: Buffer, o: number, v: bigint): void {
  if (libc.LITTLE_ENDIAN) b.writeBigUInt64LE(v, o);
  else b.writeBigUInt64BE(v, o);
}
function readU32(b: Buffer, o: number): number {
  return libc.LITTLE_ENDIAN ? b.readUInt32LE(o) : b.readUInt32BE(o);
}
function readI32(b: Buffer, o: number): number {
  return libc.LITTLE_ENDIAN ? b.readInt32LE(o) : b.readInt32BE(o);
}
