/**
 * Capture spread over worker threads (--workers N): per interface, N rings in one PACKET_FANOUT
 * hash group, so each flow stays on one worker, each worker decoding, reassembling and parsing its
 * own flows (capture-worker.ts). Requests come back here, to the main thread's one Replayer, so
 * --max-concurrency and the queues keep their meaning; counters come back every 250 ms and are
 * summed, so Prometheus sees one endpoint.
 *
 * Each worker is a FrameSource to the daemon: run() resolves when its ring has ended and everything
 * it parsed has been handed over; stats() and progress() are its last report, so a worker whose
 * thread is stuck stops making progress in /healthz like a stuck capture loop.
 */
import { Worker } from 'node:worker_threads';
import { ringShareMiB } from '../capture/ring.js';
import type { CaptureStats, FrameSource } from '../capture/source.js';
import { CaptureError } from '../errors.js';
import type { HttpParserLimits } from '../http/types.js';
import type { SourceCounts } from '../metrics/registry.js';
import { ANOMALIES, SKIPS } from '../decode/anomalies.js';
import { REASSEMBLY_EVENTS, type TableOptions } from '../reassemble/table.js';
import type { CaptureWorkerSetup } from './capture-worker.js';
import { handoffBudget, readBatch, type Batch, type HandoffSink } from './handoff.js';

const WORKER_SCRIPT = new URL('./capture-worker.js', import.meta.url);

export interface CaptureWorkersOptions {
  interfaces: string[];
  /** Workers per interface. */
  workers: number;
  port: number;
  /** Ring per interface, shared out among its workers. */
  ringMiB: number;
  ringBlockKiB: number;
  ringBlockTimeoutMs: number;
  /** Table options; memcapBytes is shared out among all workers. */
  table: Partial<TableOptions> & { port: number };
  limits: HttpParserLimits;
}

export interface ErrorInfo {
  name: string;
  message: string;
  code?: string;
  errno?: number;
  stack?: string;
}

export interface WorkerStats {
  type: 'stats';
  capture: CaptureStats;
  progress: number;
  anomalies: Float64Array;
  skips: Float64Array;
  events: Float64Array;
  openFlows: number;
  heldBytes: number;
  sinkBytes: number;
}

export type WorkerMessage = Batch | WorkerStats | { type: 'bound'; fanout: number } | { type: 'ended'; error?: ErrorInfo };

const ZERO: CaptureStats = { packets: 0, bytes: 0, kernelDrops: 0, kernelFreezes: 0, truncated: 0 };

/** One worker thread and its ring, seen by the daemon as a FrameSource. */
export class WorkerSource implements FrameSource {
  last: WorkerStats | null = null;
  /** The fanout group its ring joined (-1 until bound, or if it failed). */
  fanout = -1;
  worker: Worker | null = null;
  stopped = false;
  private settled = false;
  private resolveBound!: () => void;
  readonly bound = new Promise<void>((r) => (this.resolveBound = r));
  private resolveEnded!: () => void;
  private rejectEnded!: (e: Error) => void;
  readonly ended = new Promise<void>((res, rej) => {
    this.resolveEnded = res;
    this.rejectEnded = rej;
  });

  constructor(
    readonly name: string,
    readonly index: number,
    private readonly start: () => void,
  ) {
    this.ended.catch(() => {}); // observed through run()
  }

  run(): Promise<void> {
    this.start();
    return this.ended;
  }

  stop(): void {
    this.stopped = true;
    this.worker?.postMessage({ type: 'stop' });
    if (!this.worker) this.end();
  }

  stats(): CaptureStats {
    return this.last?.capture ?? ZERO;
  }

  progress(): number {
    return this.last?.progress ?? 0;
  }

  /** Ends run(): resolved, or rejected with `err`. */
  end(err?: Error): void {
    this.resolveBound();
    if (this.settled) return;
    this.settled = true;
    if (err) this.rejectEnded(err);
    else this.resolveEnded();
  }

  markBound(fanout: number): void {
    this.fanout = fanout;
    this.resolveBound();
  }
}

export class CaptureWorkers {
  readonly sources: WorkerSource[];
  private readonly budget = handoffBudget();
  private started = false;

  constructor(
    private readonly opts: CaptureWorkersOptions,
    private readonly sink: HandoffSink,
  ) {
    const start = () => this.start();
    this.sources = opts.interfaces.flatMap((iface) => Array.from({ length: opts.workers }, (_, i) => new WorkerSource(iface, i, start)));
  }

  /** Resolves once every worker's ring is bound or has failed. */
  get bound(): Promise<void> {
    return Promise.all(this.sources.map((s) => s.bound)).then(() => undefined);
  }

  /** The stage counters summed over the workers' last reports. */
  readonly probe = {
    decodeAnomalies: () => this.sumArrays(ANOMALIES.length, (s) => s.anomalies),
    decodeSkips: () => this.sumArrays(SKIPS.length, (s) => s.skips),
    reassemblyEvents: () => this.sumArrays(REASSEMBLY_EVENTS.length, (s) => s.events),
    flowsOpen: () => this.sum((s) => s.openFlows),
    reassemblyHeldBytes: () => this.sum((s) => s.heldBytes),
    httpBufferedBytes: () => this.sum((s) => s.sinkBytes),
  };

  private sum(f: (s: WorkerStats) => number): number {
    let n = 0;
    for (const s of this.sources) if (s.last) n += f(s.last);
    return n;
  }

  private sumArrays(length: number, f: (s: WorkerStats) => Float64Array): Float64Array {
    const out = new Float64Array(length);
    for (const s of this.sources) {
      if (!s.last) continue;
      const a = f(s.last);
      for (let i = 0; i < length; i++) out[i] += a[i];
    }
    return out;
  }

  /** Per interface, the first worker creates the fanout group; the others join it once it is bound. */
  private start(): void {
    if (this.started) return;
    this.started = true;
    for (const iface of this.opts.interfaces) {
      const group = this.sources.filter((s) => s.name === iface);
      const [first, ...rest] = group;
      this.spawn(first, 'new');
      void first.bound.then(() => {
        for (const s of rest) {
          if (s.stopped) s.end();
          else if (first.fanout < 0) s.end(new CaptureError(`capture worker ${s.index} on ${iface} not started: worker 0 could not open its ring`));
          else this.spawn(s, first.fanout);
        }
      });
    }
  }

  private spawn(s: WorkerSource, fanout: number | 'new'): void {
    if (s.stopped) {
      s.end();
      return;
    }
    const o = this.opts;
    const threads = o.interfaces.length * o.workers;
    const setup: CaptureWorkerSetup = {
      interface: s.name,
      fanout,
      port: o.port,
      ringMiB: ringShareMiB(o.ringMiB, o.workers, o.ringBlockKiB),
      ringBlockKiB: o.ringBlockKiB,
      ringBlockTimeoutMs: o.ringBlockTimeoutMs,
      table: o.table.memcapBytes === undefined ? o.table : { ...o.table, memcapBytes: Math.floor(o.table.memcapBytes / threads) },
      limits: o.limits,
      budget: this.budget,
    };
    const w = new Worker(WORKER_SCRIPT, { workerData: setup, name: `capture ${s.name}#${s.index}` });
    s.worker = w;
    w.on('message', (m: WorkerMessage) => {
      switch (m.type) {
        case 'batch':
          readBatch(m, this.sink, this.budget);
          break;
        case 'stats':
          s.last = m;
          break;
        case 'bound':
          s.markBound(m.fanout);
          break;
        case 'ended':
          s.end(m.error ? toError(m.error) : undefined);
          break;
      }
    });
    w.on('error', (e) => s.end(new CaptureError(`capture worker ${s.index} on ${s.name} failed: ${e.message}`, undefined, { cause: e })));
    w.on('exit', (code) => s.end(code === 0 ? undefined : new CaptureError(`capture worker ${s.index} on ${s.name} exited with code ${code}`)));
    // Stopped while it was starting: it still gets the message once its port is up.
    if (s.stopped) w.postMessage({ type: 'stop' });
  }
}

function toError(e: ErrorInfo): Error {
  if (e.name === 'CaptureError') return new CaptureError(e.message, e.errno);
  const err = new Error(e.message) as Error & { code?: string };
  err.name = e.name;
  err.code = e.code;
  if (e.stack) err.stack = e.stack;
  return err;
}

/** Capture counters per interface, summed over the sources reading it (several workers each). */
export function captureByInterface(sources: FrameSource[]): SourceCounts[] {
  const by = new Map<string, SourceCounts>();
  for (const s of sources) {
    const c = s.stats();
    const t = by.get(s.name);
    if (!t) by.set(s.name, { interface: s.name, ...c });
    else {
      t.packets += c.packets;
      t.bytes += c.bytes;
      t.kernelDrops += c.kernelDrops;
      t.kernelFreezes += c.kernelFreezes;
      t.truncated += c.truncated;
    }
  }
  return [...by.values()];
}
