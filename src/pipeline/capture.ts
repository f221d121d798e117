/**
 * Where capture through parsing runs: in this thread (a pcap file, or one ring per interface), or
 * in worker threads (--workers N). Either way the daemon gets a Capture and the same Stages run.
 */
import { PcapFileSource } from '../capture/pcap.js';
import { buildTunnelFilter } from '../capture/bpf.js';
import { PacketRing } from '../capture/ring.js';
import type { Recorder } from '../capture/record.js';
import type { FrameHandler, FrameSource } from '../capture/source.js';
import type { Shadow } from '../compare/shadow.js';
import type { HandoffSink } from './handoff.js';
import { faultReporter, Stages, ThreadCapture, type Capture, type CaptureFault, type RequestSink, type StageOptions } from './stages.js';
import { CaptureWorkers } from './workers.js';

export interface CaptureOptions {
  /** Read this file (or directory of files) instead of the interfaces. */
  pcap?: string;
  /** Reading files: 0 as fast as the destination takes them, N the recorded gaps ÷ N; passes over the files. */
  speed: number;
  loops: number;
  interfaces: string[];
  /** Devices whose VXLAN/GENEVE datagrams are decapsulated in user space (StageOptions.encap). */
  encapInterfaces?: string[];
  /** The pcap file holds tunnels too. */
  pcapEncap?: boolean;
  /** Capture threads per interface; 1: in this thread. */
  workers: number;
  /** Per interface (shared out among its workers). */
  ring: { ringMiB: number; blockKiB: number; retireMs: number };
  stages: StageOptions;
  /** Told of exceptions capture caught and carried past (a stage threw), at most one per kind per loop per 10 s. */
  onFault?: (f: CaptureFault) => void;
}

/** What the daemon adds beside the stages. */
export interface CaptureHooks {
  /** --record: every frame is written; with `recordOnly` (no destination) nothing else runs. */
  recorder?: Recorder | null;
  recordOnly?: boolean;
  /** Reading files: holds reading back while the destinations are behind. */
  gate?: () => Promise<void> | null;
}

/** Where requests go: from the stages in this thread, or from the workers' hand-off (which can also overflow). */
export type CaptureSink = RequestSink & Pick<HandoffSink, 'overflow'>;

/**
 * The capture for `opts`, handing requests to `out`. Shadow testing pairs both directions of a
 * connection in one place, so with `shadow` capture stays in this thread and rings take both.
 */
export function createCapture(opts: CaptureOptions, out: CaptureSink, shadow: Shadow | null, hooks: CaptureHooks = {}): Capture {
  const recorder = hooks.recorder ?? null;
  // Recording needs one time-ordered stream of frames and decapsulation one table for both directions:
  // config refuses either with --workers > 1; were it asked anyway, stay in this thread.
  if (opts.pcap === undefined && opts.workers > 1 && shadow === null && recorder === null && !opts.encapInterfaces?.length) {
    return new CaptureWorkers({ interfaces: opts.interfaces, workers: opts.workers, ring: opts.ring, stages: opts.stages, onFault: opts.onFault }, out);
  }
  const stages = new Stages(opts.stages, out, shadow);
  const tap = recorder ? (name: string) => recordingHandler(recorder, name) : null;
  if (opts.pcap !== undefined) {
    // The next pass repeats every connection's sequence numbers: close the flows first (partial requests counted).
    const file = new PcapFileSource(opts.pcap, { speed: opts.speed, loops: opts.loops, gate: hooks.gate, onPassEnd: () => stages.close() });
    return new ThreadCapture([file], stages, undefined, new Set(opts.pcapEncap ? [file] : []), tap, hooks.recordOnly === true);
  }
  const ring = (i: string, filter?: Buffer): PacketRing =>
    new PacketRing({
      ...opts.ring,
      interface: i,
      port: opts.stages.table.port,
      bothDirections: shadow !== null,
      filter,
      // The ring was full: flows whose holes open now lost them to the kernel.
      onLoss: () => stages.captureLoss(),
      onError: opts.onFault && faultReporter(i, opts.onFault),
    });
  // Tunnels carry both directions alike: the filter keeps every VXLAN/GENEVE datagram, decode picks.
  const encap = (opts.encapInterfaces ?? []).map((i) => ring(i, buildTunnelFilter()));
  const sources: FrameSource[] = [...opts.interfaces.map((i) => ring(i)), ...encap];
  return new ThreadCapture(sources, stages, undefined, new Set(encap), tap, hooks.recordOnly === true);
}

function recordingHandler(recorder: Recorder, name: string): FrameHandler {
  return (buf, off, capLen, wireLen, linkType, ts) => recorder.frame(buf, off, capLen, wireLen, linkType, ts, name);
}
