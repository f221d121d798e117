/**
 * Where capture through parsing runs: in this thread (a pcap file, or one ring per interface), or
 * in worker threads (--workers N). Either way the daemon gets a Capture and the same Stages run.
 */
import { PcapFileSource } from '../capture/pcap.js';
import { PacketRing } from '../capture/ring.js';
import type { Recorder } from '../capture/record.js';
import type { FrameHandler, FrameSource } from '../capture/source.js';
import type { Shadow } from '../compare/shadow.js';
import type { HandoffSink } from './handoff.js';
import { Stages, ThreadCapture, type Capture, type RequestSink, type StageOptions } from './stages.js';
import { CaptureWorkers } from './workers.js';

export interface CaptureOptions {
  /** Read this file (or directory of files) instead of the interfaces. */
  pcap?: string;
  /** Reading files: 0 as fast as the destination takes them, N the recorded gaps ÷ N; passes over the files. */
  speed: number;
  loops: number;
  interfaces: string[];
  /** Capture threads per interface; 1: in this thread. */
  workers: number;
  /** Per interface (shared out among its workers). */
  ring: { ringMiB: number; blockKiB: number; retireMs: number };
  stages: StageOptions;
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
  // Recording needs one time-ordered stream of frames: config refuses --record with --workers > 1.
  if (opts.pcap === undefined && opts.workers > 1 && shadow === null && recorder === null) {
    return new CaptureWorkers({ interfaces: opts.interfaces, workers: opts.workers, ring: opts.ring, stages: opts.stages }, out);
  }
  const stages = new Stages(opts.stages, out, shadow);
  const sources: FrameSource[] =
    opts.pcap !== undefined
      ? // The next pass repeats every connection's sequence numbers: close the flows first (partial requests counted).
        [new PcapFileSource(opts.pcap, { speed: opts.speed, loops: opts.loops, gate: hooks.gate, onPassEnd: () => stages.close() })]
      : opts.interfaces.map(
          (i) =>
            new PacketRing({
              ...opts.ring,
              interface: i,
              port: opts.stages.table.port,
              bothDirections: shadow !== null,
              // The ring was full: flows whose holes open now lost them to the kernel.
              onLoss: () => stages.captureLoss(),
            }),
        );
  const tap = recorder ? (name: string) => recordingHandler(recorder, name) : null;
  return new ThreadCapture(sources, stages, undefined, tap, hooks.recordOnly === true);
}

function recordingHandler(recorder: Recorder, name: string): FrameHandler {
  return (buf, off, capLen, wireLen, linkType, ts) => recorder.frame(buf, off, capLen, wireLen, linkType, ts, name);
}
