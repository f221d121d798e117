/**
 * The contract between capture and decode.
 *
 * A source calls `onFrame` once per captured frame. `buf` is a view (into the ring block or a
 * file chunk) that is valid only until `onFrame` returns: copy what must outlive the call.
 * `capLen` bytes are present at `buf[offset..offset+capLen)`; `wireLen` is the frame's length
 * on the wire. capLen < wireLen means the frame was cut short (snaplen): treat the missing part
 * as a gap, never as data. `linkType` says which header the frame starts with (see LinkType).
 */
export type FrameHandler = (buf: Uint8Array, offset: number, capLen: number, wireLen: number, linkType?: LinkType) => void;

/**
 * What the frame starts with, as a tcpdump.org LINKTYPE_ number. A source that passes none
 * (the AF_PACKET ring: vxlan0 is always Ethernet) means LINK_ETHERNET. A pcap source passes
 * the file's (or the pcapng interface's) type, and only the ones listed here: an unknown one
 * is a format error there, never a frame that decode cannot place.
 */
export type LinkType = number;
export const LINK_NULL = 0; // BSD loopback: 4-byte address family in the capturing host's byte order
export const LINK_ETHERNET = 1;
export const LINK_RAW = 101; // raw IPv4 or IPv6, by the version nibble
export const LINK_DLT_RAW_12 = 12; // DLT_RAW as some files carry it (not remapped to 101)
export const LINK_DLT_RAW_14 = 14; // DLT_RAW on OpenBSD
export const LINK_LOOP = 108; // OpenBSD loopback: like NULL, in network byte order
export const LINK_LINUX_SLL = 113; // Linux cooked capture v1: 16-byte header
export const LINK_IPV4 = 228;
export const LINK_IPV6 = 229;
export const LINK_LINUX_SLL2 = 276; // Linux cooked capture v2: 20-byte header
export const LINK_TYPES: ReadonlyMap<LinkType, string> = new Map([
  [LINK_NULL, 'NULL'],
  [LINK_ETHERNET, 'ETHERNET'],
  [LINK_DLT_RAW_12, 'RAW'],
  [LINK_DLT_RAW_14, 'RAW'],
  [LINK_RAW, 'RAW'],
  [LINK_LOOP, 'LOOP'],
  [LINK_LINUX_SLL, 'LINUX_SLL'],
  [LINK_IPV4, 'IPV4'],
  [LINK_IPV6, 'IPV6'],
  [LINK_LINUX_SLL2, 'LINUX_SLL2'],
]);

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
}

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
