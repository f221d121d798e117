/**
 * The one place where capture → decode → reassemble → http is assembled. The main thread and
 * every capture worker (capture-worker.ts) build the same Stages and run them the same way
 * (ThreadCapture); only where parsed requests go differs: to the replay in the main thread, to
 * the hand-off in a worker.
 *
 * One frame, top to bottom: a source calls the handler from frameHandler() with a view into its
 * ring block or file chunk → Decoder.decode fills a Packet with offsets into that view →
 * FlowTable.onPacket puts the segment in order (copying only what arrives out of order) and pushes
 * in-order bytes into the flow's HttpRequestParser (or, after the HTTP/2 preface, H2RequestReader) → each complete request goes to
 * `RequestSink.request`, with the flow it came on.
 */
import { captureByInterface, captureClock, type CaptureErrorHandler, type FrameHandler, type FrameSource } from '../capture/source.js';
import type { RequestSide, Shadow } from '../compare/shadow.js';
import { ANOMALIES, SKIPS } from '../decode/anomalies.js';
import { Decoder } from '../decode/decoder.js';
import { VNI_OTHER, type EncapOptions } from '../decode/tunnel.js';
import { rateLimited } from '../log.js';
import { TlsGuard } from '../http/tls.js';
import { Http1Or2 } from '../http2/switch.js';
import type { HttpDropReason, HttpParserLimits, HttpRequest } from '../http/types.js';
import type { PipelineProbe } from '../metrics/registry.js';
import type { FlowInfo, StreamSink } from '../reassemble/stream.js';
import { FlowTable, type TableOptions } from '../reassemble/table.js';
import type { AnswerSink } from '../replay/destination.js';

/** Timeouts (holes, idle flows, fragments) run this often: they are coarse anyway. */
export const SWEEP_MS = 250;

export interface StageOptions {
  /** Reassembly; `port` is the service port, which decode keeps too. */
  table: Partial<TableOptions> & { port: number };
  limits: HttpParserLimits;
  /** For the sources whose frames are tunnels to take apart (--encap-interface, --pcap-encap). */
  encap?: EncapOptions;
}

/** Where the stages hand parsed requests and parser drops. */
export interface RequestSink {
  /** A complete request; with shadow testing, `answers` take each destination's answer. Returns whether the replay kept it. */
  request(req: HttpRequest, flow: FlowInfo, answers?: AnswerSink[]): boolean;
  /** The parser gave up `requests` requests (maybe 0) and `skippedBytes` bytes, for `reason`. */
  dropped(reason: HttpDropReason, requests: number, skippedBytes: number, flow?: FlowInfo): void;
}

/** The stages' counters, summed over decoders: what /metrics shows, and what a worker reports. */
export interface StageCounters {
  anomalies: Float64Array;
  skips: Float64Array;
  events: Float64Array;
  openFlows: number;
  heldBytes: number;
  sinkBytes: number;
}

/** The part of the metrics' probe that capture through parsing answers. */
export type CaptureProbe = Omit<PipelineProbe, 'destinations'>;

/** An exception a capture loop caught and carried on past (a stage threw on a frame); the counters have every one. */
export interface CaptureFault {
  interface: string;
  kind: 'handler' | 'loss_handler';
  error: unknown;
  /** Faults of this kind on this loop not reported since the last one. */
  suppressed: number;
}

/** Reports a loop's faults at most once per kind per interval, so a stage that throws on every frame cannot flood the log. */
export function faultReporter(name: string, report: (f: CaptureFault) => void, intervalMs = 10_000): CaptureErrorHandler {
  const limited = rateLimited((suppressed, kind: CaptureFault['kind'], error: unknown) => report({ interface: name, kind, error, suppressed }), intervalMs);
  return (kind, error) => limited(kind, kind, error);
}

/** A capture loop (a ring, a pcap file, a worker thread), for /healthz and logs. */
export interface CaptureLoop {
  readonly name: string;
  /** Grows while the loop works; a loop whose progress stops is stuck. */
  progress(): number;
}

/** Capture through parsing, in this thread or in worker threads: what the daemon starts, watches and stops. */
export interface Capture {
  readonly loops: readonly CaptureLoop[];
  /** Capture threads per interface; 1: this thread. */
  readonly workers: number;
  readonly probe: CaptureProbe;
  /** Runs every loop; resolves when all have ended, with each one's error or null. */
  run(): Promise<Array<Error | null>>;
  /** After run(): resolves once every loop has bound its socket or failed; false if one failed. */
  bound(): Promise<boolean>;
  /** Asks every loop to stop; run() resolves soon after. */
  stop(): void;
  /** After run() resolved: close every flow (partial requests are counted). */
  close(): void;
}

/** decode → reassemble → http for the sources of one thread. */
export class Stages {
  readonly requests: FlowTable;
  /** Shadow testing: production's responses, reassembled from the server-to-client direction. */
  readonly responses: FlowTable | null;
  /** Reassembly's clock (ms), advanced once per sweep, not read per packet. */
  now = Date.now();
  private readonly decoders: Decoder[] = [];

  constructor(
    private readonly opts: StageOptions,
    private readonly out: RequestSink,
    private readonly shadow: Shadow | null = null,
  ) {
    this.requests = new FlowTable(opts.table, (info, midstream) => this.requestParser(info, midstream));
    this.responses = shadow ? new FlowTable({ ...opts.table, direction: 'to_client' }, (info, midstream) => shadow.responseSink(info, midstream)) : null;
  }

  /**
   * The handler for one source, with a decoder of its own (fragments do not mix across sources);
   * `decap`: the source's frames are VXLAN/GENEVE datagrams, decapsulated here.
   */
  frameHandler(decap = false): FrameHandler {
    const decoder = new Decoder(this.opts.table.port, {}, decap ? (this.opts.encap ?? { vnis: [] }) : null);
    this.decoders.push(decoder);
    const requests = this.requests;
    const responses = this.responses;
    return (buf, off, capLen, wireLen, linkType) => {
      const p = decoder.decode(buf, off, capLen, wireLen, linkType);
      if (p === null) return;
      requests.onPacket(p, this.now);
      if (responses !== null) responses.onPacket(p, this.now);
    };
  }

  /** The sink reassembly feeds for a new client-to-server flow: its request parser, paired with production's answers when shadow testing. */
  private requestParser(info: FlowInfo, midstream: boolean): StreamSink {
    const out = this.out;
    let side: RequestSide | null = null;
    const onDrop = (reason: HttpDropReason, requests: number, skippedBytes: number): void => {
      if (requests > 0) side?.dropped(requests);
      out.dropped(reason, requests, skippedBytes, info);
    };
    // HTTP/1.x, or HTTP/2 after the preface or an h2c upgrade (src/http2/switch.ts).
    const http = new Http1Or2(
      {
        onRequest: (req) => {
          if (side) side.request(req, (answers) => out.request(req, info, answers));
          else out.request(req, info);
        },
        onDrop,
      },
      this.opts.limits,
      midstream,
    );
    // A TLS connection is said to be one (drop reason `tls`) before the parser would call it malformed.
    const parser = new TlsGuard(http, midstream, (requests, bytes) => onDrop('tls', requests, bytes));
    const paired = this.shadow?.requestSide(info, midstream, parser) ?? null;
    if (paired === null) return parser;
    side = paired.side;
    return paired.sink;
  }

  /**
   * The ring was full: flows whose holes open now lost them to the kernel (stream_gap_kernel_drop).
   * Stamped with the wall clock: `now` may still be a stale capture time while a backlog drains,
   * and the drop happened no later than this moment.
   */
  captureLoss(): void {
    const at = Math.max(this.now, Date.now());
    this.requests.captureLoss(at);
    this.responses?.captureLoss(at);
  }

  /** Every SWEEP_MS, with the capture clock: timeouts run, and shadow testing checks that responses are mirrored. */
  sweep(now: number): void {
    this.now = now;
    for (const d of this.decoders) d.sweep(now);
    this.requests.sweep(now);
    if (this.responses !== null) {
      this.responses.sweep(now);
      // Server-to-client segments seen: the table counts the other direction (the client's) apart.
      this.shadow!.tick(now, this.responses.event('segments') - this.responses.event('server_segments'));
    }
  }

  /** Capture has ended: held fragments and flows are given up, partial requests counted. */
  close(): void {
    this.now = Date.now();
    for (const d of this.decoders) d.closeAll();
    this.requests.closeAll(this.now);
    this.responses?.closeAll(this.now);
  }

  /** Frames decapsulated per VNI over every decoder, by label value ("other": beyond the cap). */
  vniFrames(): Map<string, number> {
    const out = new Map<string, number>();
    for (const d of this.decoders) {
      for (const [vni, n] of d.vnis.frames) {
        const k = vni === VNI_OTHER ? 'other' : String(vni);
        out.set(k, (out.get(k) ?? 0) + n);
      }
    }
    return out;
  }

  counters(): StageCounters {
    const t = this.requests;
    return {
      anomalies: sumArrays(ANOMALIES.length, this.decoders.map((d) => d.counters.anomalies)),
      skips: sumArrays(SKIPS.length, this.decoders.map((d) => d.counters.skips)),
      events: t.events,
      openFlows: t.openFlows,
      heldBytes: t.heldBytes,
      sinkBytes: t.sinkBytes(),
    };
  }
}

/** Capture loops in this thread (rings, or a pcap file), each feeding the same Stages. */
export class ThreadCapture implements Capture {
  readonly workers = 1;
  private readonly handlers: FrameHandler[];
  private timer: NodeJS.Timeout | undefined;
  private failed = false;

  constructor(
    readonly loops: readonly FrameSource[],
    readonly stages: Stages,
    /** Called after each sweep (a worker reports its counters then). */
    private readonly afterSweep: () => void = () => {},
    /** The loops whose frames are tunnels to decapsulate. */
    decap: ReadonlySet<FrameSource> = new Set(),
    /** Sees every frame of a source before decode (the recorder); with `tapOnly`, instead of decode. */
    tap: ((source: string) => FrameHandler) | null = null,
    tapOnly = false,
  ) {
    this.handlers = loops.map((s) => {
      const t = tap?.(s.name);
      const h = stages.frameHandler(decap.has(s));
      if (!t) return h;
      if (tapOnly) return t;
      return (buf, off, capLen, wireLen, linkType, ts) => {
        t(buf, off, capLen, wireLen, linkType, ts);
        h(buf, off, capLen, wireLen, linkType, ts);
      };
    });
  }

  readonly probe: CaptureProbe = {
    capture: () => captureByInterface(this.loops),
    decodeAnomalies: () => this.stages.counters().anomalies,
    decodeSkips: () => this.stages.counters().skips,
    reassemblyEvents: () => this.stages.requests.events,
    flowsOpen: () => this.stages.requests.openFlows,
    reassemblyHeldBytes: () => this.stages.requests.heldBytes,
    httpBufferedBytes: () => this.stages.requests.sinkBytes(),
    decapFrames: () => this.stages.vniFrames(),
  };

  run(): Promise<Array<Error | null>> {
    this.timer = setInterval(() => {
      // Held back to what the sources have handed over while one works through a backlog.
      this.stages.sweep(captureClock(this.loops, this.stages.now));
      this.afterSweep();
    }, SWEEP_MS);
    const runs = this.loops.map((s, i) =>
      s.run(this.handlers[i]).then(
        () => null,
        (e: unknown) => {
          this.failed = true;
          return e as Error;
        },
      ),
    );
    return Promise.all(runs);
  }

  /** run() opens the socket, filter, ring and bind before its first await: after one turn, every source has bound or failed. */
  async bound(): Promise<boolean> {
    await new Promise((r) => setImmediate(r));
    return !this.failed;
  }

  stop(): void {
    for (const s of this.loops) s.stop();
  }

  close(): void {
    clearInterval(this.timer);
    this.stages.close();
  }
}

/** Element-wise sum; a single array is returned as it is (the caller only reads it). */
function sumArrays(length: number, arrs: readonly Float64Array[]): Float64Array {
  if (arrs.length === 1) return arrs[0];
  const out = new Float64Array(length);
  for (const a of arrs) for (let i = 0; i < length; i++) out[i] += a[i];
  return out;
}
