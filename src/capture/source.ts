/**
 * The contract between capture and decode.
 *
 * A source calls `onFrame` once per captured frame. `buf` is a view (into the ring block or a
 * file chunk) that is valid only until `onFrame` returns: copy what must outlive the call.
 * `capLen` bytes are present at `buf[offset..offset+capLen)`; `wireLen` is the frame's length
 * on the wire. capLen < wireLen means the frame was cut short (snaplen): treat the missing part
 * as a gap, never as data. `linkType` says which header the frame starts with (see LinkType).
 * `tsUs` is the capture time in µs since the epoch (exact in a double until the year 2255),
 * from the kernel or the file; recording and timed file replay use it.
 */
export type FrameHandler = (buf: Uint8Array, offset: number, capLen: number, wireLen: number, linkType?: LinkType, tsUs?: number) => void;

export { LINK_ETHERNET, LINK_TYPES, type LinkType } from '../linktypes.js';
import type { LinkType } from '../linktypes.js';

export interface CaptureStats {
  /** Frames handed to onFrame. */
  packets: number;
  /** Bytes handed to onFrame (sum of capLen). */
  bytes: number;
  /** Frames the kernel dropped because the ring was full (PACKET_STATISTICS tp_drops); 0 for pcap. */
  kernelDrops: number;
  /** Times the ring reported a frozen queue (tp_freeze_q_cnt); 0 for pcap. */
  kernelFreezes: number;
  /** Frames whose capLen < wireLen. */
  truncated: number;
  /** onFrame threw (a bug in a stage): the frame was skipped and capture carried on. */
  handlerErrors: number;
  /** The ring's loss callback threw; capture carried on. */
  lossHandlerErrors: number;
  /** Ring blocks whose frame chain pointed outside the block; the rest of such a block was skipped. */
  badBlocks: number;
  /** poll() failed, or reported a socket error (POLLERR: ENETDOWN when the link goes down). */
  pollErrors: number;
}

/** Every counter at 0. */
export function zeroCaptureStats(): CaptureStats {
  return { packets: 0, bytes: 0, kernelDrops: 0, kernelFreezes: 0, truncated: 0, handlerErrors: 0, lossHandlerErrors: 0, badBlocks: 0, pollErrors: 0 };
}

/**
 * Things that went wrong in a capture loop that carried on, as mirror_replay_capture_errors_total
 * labels them (`kind`), each with the CaptureStats counter behind it.
 */
export const CAPTURE_ERRORS = [
  { kind: 'handler', key: 'handlerErrors' },
  { kind: 'loss_handler', key: 'lossHandlerErrors' },
  { kind: 'bad_block', key: 'badBlocks' },
  { kind: 'kernel_freeze', key: 'kernelFreezes' },
  { kind: 'poll', key: 'pollErrors' },
] as const satisfies ReadonlyArray<{ kind: string; key: keyof CaptureStats }>;

export type CaptureErrorKind = (typeof CAPTURE_ERRORS)[number]['kind'];

/** Told of an exception a capture loop caught and carried on past (for the log: the counters have it). */
export type CaptureErrorHandler = (kind: 'handler' | 'loss_handler', err: unknown) => void;

export interface FrameSource {
  /** For logs and metric labels: the interface name or the pcap path. */
  readonly name: string;
  /**
   * Start delivering frames. Resolves when the source ends: for a pcap file at end of file,
   * for a live ring after stop(). Rejects with a CaptureError/PcapFormatError if it cannot open.
   */
  run(onFrame: FrameHandler): Promise<void>;
  /** Ask the source to stop; run() resolves soon after. Safe to call more than once. */
  stop(): void;
  /** Cumulative counters; cheap to call (reads PACKET_STATISTICS for a ring). */
  stats(): CaptureStats;
  /** Number of polls/blocks processed since start; the watchdog uses it to see progress. */
  progress(): number;
  /**
   * While frames captured earlier still wait in the source (it fell behind, e.g. after a stall):
   * the capture time (ms since the epoch) up to which frames have been handed over; else null.
   */
  backlogTime?(): number | null;
}

/**
 * The time to run reassembly timeouts on: the wall clock, held back to what every source has
 * handed over while one works through a backlog, so that a stall does not time out holes and
 * requests whose next segments are still queued. Never earlier than `prev`.
 */
export function captureClock(sources: readonly FrameSource[], prev: number): number {
  let t = Date.now();
  for (const s of sources) {
    const b = s.backlogTime?.() ?? null;
    if (b !== null && b < t) t = b;
  }
  return Math.max(prev, t);
}

/** One capture source's counters, labelled with its name (the interface, or the pcap path). */
export interface SourceCounts extends CaptureStats {
  interface: string;
}

/** Capture counters per interface, summed over the sources reading it (several workers each). */
export function captureByInterface(sources: ReadonlyArray<Pick<FrameSource, 'name' | 'stats'>>): SourceCounts[] {
  const by = new Map<string, SourceCounts>();
  for (const s of sources) {
    const c = s.stats();
    const t = by.get(s.name);
    if (!t) by.set(s.name, { interface: s.name, ...c });
    else for (const k of Object.keys(c) as Array<keyof CaptureStats>) t[k] += c[k];
  }
  return [...by.values()];
}
