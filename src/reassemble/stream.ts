/**
 * What reassembly hands the next stage: one direction's bytes, in order, with holes announced.
 * `push` bytes are valid only during the call.
 */
export interface StreamSink {
  push(buf: Uint8Array, off: number, len: number): void;
  /** `bytes` of the stream are unknown (lost, or cut short by the capture). */
  gap(bytes: number): void;
  /** The connection is over (FIN, RST, idle expiry or eviction). */
  end(): void;
  /** Bytes the sink holds, for memory accounting. */
  readonly bufferedBytes: number;
}

/** The connection a stream belongs to, formatted once per flow. */
export interface FlowInfo {
  clientAddr: string;
  clientPort: number;
  serverAddr: string;
  serverPort: number;
  ipVersion: number;
}

export type SinkFactory = (info: FlowInfo, midstream: boolean) => StreamSink;
