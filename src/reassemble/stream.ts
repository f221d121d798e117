/** Why a run of stream bytes is unknown; the HTTP stage names its drop reason after it. */
export type GapCause =
  /** The mirror lost the segment: a hole not filled within the hole timeout, or bytes before a FIN. */
  | 'lost'
  /** As 'lost', but the capture ring dropped frames (kernel drops) while the hole was open. */
  | 'kernel_drop'
  /** The capture cut the segment short (snaplen/MTU): the bytes were on the wire. */
  | 'truncated'
  /** The flow held more out-of-order bytes than its cap, so its oldest hole was given up. */
  | 'flow_cap'
  /** All flows together held more than the global memcap: the biggest holders gave up their holes. */
  | 'memcap';

/** Why bytes already handed on cannot be trusted. */
export type TaintCause =
  /** Two copies of the same sequence range carried different bytes: which one the server kept is unknown. */
  'overlap_conflict';

/**
 * What reassembly hands the next stage: one direction's bytes, in order, with holes announced.
 * `push` bytes are valid only during the call.
 */
export interface StreamSink {
  push(buf: Uint8Array, off: number, len: number): void;
  /** `bytes` of the stream are unknown (lost, or cut short by the capture). */
  gap(bytes: number, cause?: GapCause): void;
  /**
   * Bytes already pushed (the last `pendingBytes` or fewer), or the next ones to be pushed, may
   * differ from what the server received: the message they belong to must not be used.
   */
  taint(cause: TaintCause): void;
  /** No new byte arrived for a while (the table's hole timeout) although the connection is open. */
  stalled(): void;
  /** The connection is over (FIN, an accepted RST, idle expiry or eviction). */
  end(): void;
  /**
   * The other direction (server to client) of the same connection, when the capture carries it:
   * in-order payload bytes (len may be 0: a bare segment, which tells the sink the server side is
   * visible). Valid only during the call. Optional: sinks that do not care leave it out.
   */
  peer?(buf: Uint8Array, off: number, len: number): void;
  /** Bytes the sink holds, for memory accounting. */
  readonly bufferedBytes: number;
  /**
   * How many of the most recently pushed bytes belong to a message still in progress (0 between
   * messages). Reassembly keeps up to this many of them to check later overlapping copies.
   */
  readonly pendingBytes: number;
}

/** The sink of a closed flow, which lingers to recognise late copies: it was told end(), nothing reaches it after. */
export const ENDED_SINK: StreamSink = {
  push() {},
  gap() {},
  taint() {},
  stalled() {},
  end() {},
  bufferedBytes: 0,
  pendingBytes: 0,
};

/** The connection a stream belongs to, formatted once per flow. */
export interface FlowInfo {
  clientAddr: string;
  clientPort: number;
  serverAddr: string;
  serverPort: number;
  ipVersion: number;
  /** The mirror session's VNI when decode decapsulated it (Packet.vni); absent or -1 otherwise. */
  vni?: number;
}

export type SinkFactory = (info: FlowInfo, midstream: boolean) => StreamSink;
