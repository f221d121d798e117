/**
 * The contract between capture and decode.
 *
 * A source calls `onFrame` once per captured frame. `buf` is a view (into the ring block or a
 * file chunk) that is valid only until `onFrame` returns: copy what must outlive the call.
 * `capLen` bytes are present at `buf[offset..offset+capLen)`; `wireLen` is the frame's length
 * on the wire. capLen < wireLen means the frame was cut short (snaplen): treat the missing part
 * as a gap, never as data.
 */
export type FrameHandler = (buf: Uint8Array, offset: number, capLen: number, wireLen: number) => void;

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
}
